#!/usr/bin/env python3
"""Turn a benchmark rule file's `match:` regexes into pattern files for the tools compared with
dingtail, so that every tool searches for the same thing.

    benches/patterns.py benches/rules-100.yaml rust  > /tmp/p.rust   # rg -f (Rust regex, unnamed)
    benches/patterns.py benches/rules-100.yaml ere   > /tmp/p.ere    # grep -E -f (POSIX ERE)
    benches/patterns.py benches/rules-100.yaml swatch > /tmp/swatchrc # swatchdog -c (Perl)

For rg, capture names are dropped (rg joins the patterns into one regex, where a name may occur
once). Rust-regex-only syntax is rewritten for POSIX ERE: `(?P<name>...)` and `(?:...)` become plain
groups, `\\d` `\\w` `\\s` `\\S` become bracket expressions. The converter refuses (exit 1) what it
cannot translate faithfully (flags, lazy repetition, escapes inside brackets) rather than compare
different searches. Only single-quoted YAML scalars are read (that is how the bench rule files are
written), so that no YAML library is needed.
"""

import re
import sys

MATCH = re.compile(r"^\s*match:\s*'((?:[^']|'')*)'\s*$")
ERE_CLASSES = {"d": "[0-9]", "w": "[[:alnum:]_]", "s": "[[:space:]]", "S": "[^[:space:]]"}


def patterns(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if re.match(r"^\s*match:", line):
                m = MATCH.match(line)
                if not m:
                    sys.exit(f"{path}:{number}: only single-quoted `match:` scalars are supported")
                out.append(m.group(1).replace("''", "'"))
    return out


def to_ere(pattern):
    if re.search(r"\(\?(?!P<|:)|[*+?}]\?", pattern):
        sys.exit(f"cannot translate to ERE (flags or lazy repetition): {pattern}")
    out = []
    i = 0
    in_bracket = False
    while i < len(pattern):
        c = pattern[i]
        if in_bracket:
            if c == "\\":
                sys.exit(f"cannot translate an escape inside brackets to ERE: {pattern}")
            if c == "]":
                in_bracket = False
            out.append(c)
            i += 1
        elif c == "[":
            in_bracket = True
            out.append(c)
            i += 1
            # A `]` or `^]` right after `[` is literal.
            if pattern[i:i + 1] == "^":
                out.append("^")
                i += 1
            if pattern[i:i + 1] == "]":
                out.append("]")
                i += 1
        elif c == "\\":
            n = pattern[i + 1:i + 2]
            out.append(ERE_CLASSES.get(n, "\\" + n))
            i += 2
        elif pattern.startswith("(?P<", i):
            i = pattern.index(">", i) + 1
            out.append("(")
        elif pattern.startswith("(?:", i):
            i += 3
            out.append("(")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def to_swatch(pattern):
    # Perl understands (?P<name>...) and the escapes; only the delimiter needs escaping.
    return "watchfor /" + pattern.replace("/", "\\/") + "/\n  echo\n"


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ("rust", "ere", "swatch"):
        sys.exit(__doc__)
    found = patterns(sys.argv[1])
    if not found:
        sys.exit(f"{sys.argv[1]}: no `match:` patterns")
    for pattern in found:
        if sys.argv[2] == "rust":
            # rg joins the patterns into one regex, where a capture name may appear only once.
            print(re.sub(r"\(\?P<[^>]*>", "(", pattern))
        elif sys.argv[2] == "ere":
            print(to_ere(pattern))
        else:
            sys.stdout.write(to_swatch(pattern))


if __name__ == "__main__":
    main()
