//! Files that are not text: compressed rotations (`.gz`, `.xz`, `.bz2`, `.zst`, `.zip`, known by
//! name, or by their magic bytes when the name does not say) and files that look binary (a NUL
//! byte among their first bytes). Matching rules against them would only produce garbage (one
//! 0.9 MB gzip made 3,444 lines, issue 19), so they are never followed, even when a glob names
//! them explicitly: discovery skips compressed names, the tailer sniffs the head of every file it
//! opens (the head is read for the fingerprint anyway), reports a skipped file once and counts it.
//! `dingtail check` says which files it skips and why. Pure: names and bytes in, verdicts out.

use std::fmt;
use std::path::Path;

/// Why a file is not followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    /// Compressed; the format's usual extension.
    Compressed(&'static str),
    /// A NUL byte among its first bytes.
    Binary,
}

impl Skip {
    /// The metric label: `compressed` or `binary`.
    pub fn reason(self) -> &'static str {
        match self {
            Skip::Compressed(_) => "compressed",
            Skip::Binary => "binary",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::Compressed(kind) => write!(f, "compressed ({kind})"),
            Skip::Binary => f.write_str("binary (NUL bytes in its first bytes)"),
        }
    }
}

/// Extensions of compressed files, lower case.
const COMPRESSED_NAMES: &[&str] = &["gz", "xz", "bz2", "zst", "zip"];

/// Magic bytes of the same formats.
const MAGIC: &[(&[u8], &str)] = &[
    (&[0x1f, 0x8b], "gz"),
    (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz"),
    (b"BZh", "bz2"),
    (&[0x28, 0xb5, 0x2f, 0xfd], "zst"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
];

/// `Some` when `path`'s name ends in a compressed format's extension (any case).
pub fn compressed_name(path: &Path) -> Option<Skip> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    COMPRESSED_NAMES
        .iter()
        .find(|known| **known == extension)
        .map(|known| Skip::Compressed(known))
}

/// `Some` when a file whose first bytes are `head` is compressed (by its magic bytes) or looks
/// binary (a NUL byte in `head`). An empty head says nothing.
pub fn sniff(head: &[u8]) -> Option<Skip> {
    if let Some((_, kind)) = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        // `BZh` alone is plausible text; a bzip2 stream goes on with the block size digit.
        if *kind != "bz2" || head.get(3).is_some_and(|d| (b'1'..=b'9').contains(d)) {
            return Some(Skip::Compressed(kind));
        }
    }
    memchr::memchr(0, head).map(|_| Skip::Binary)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::tail::sniff::{Skip, compressed_name, sniff};

    #[test]
    fn compressed_rotations_are_known_by_name_and_by_magic() {
        for name in ["app.log.1.gz", "app.log.2.XZ", "a.bz2", "a.zst", "logs.zip"] {
            assert!(
                matches!(compressed_name(Path::new(name)), Some(Skip::Compressed(_))),
                "{name}"
            );
        }
        for name in ["app.log", "app.log.1", "gz.log", "app.gzip"] {
            assert_eq!(compressed_name(Path::new(name)), None, "{name}");
        }
        assert_eq!(
            sniff(&[0x1f, 0x8b, 8, 0, 0, 0]),
            Some(Skip::Compressed("gz"))
        );
        assert_eq!(sniff(b"BZh91AY&SY"), Some(Skip::Compressed("bz2")));
        assert_eq!(sniff(b"BZh is a word\n"), None);
        assert_eq!(sniff(b"PK\x03\x04\x14\0"), Some(Skip::Compressed("zip")));
        assert_eq!(
            sniff(&[0x28, 0xb5, 0x2f, 0xfd, 1]),
            Some(Skip::Compressed("zst"))
        );
    }

    #[test]
    fn a_nul_byte_in_the_head_looks_binary_and_text_does_not() {
        assert_eq!(sniff(b"ELF\x7f\0\0\x01"), Some(Skip::Binary));
        assert_eq!(sniff(b"2026-11-25 ERROR disk full\n"), None);
        assert_eq!(sniff("中文日志 告警\n\t\x1b[31m".as_bytes()), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(Skip::Binary.reason(), "binary");
        assert_eq!(Skip::Compressed("gz").to_string(), "compressed (gz)");
    }
}
