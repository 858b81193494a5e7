#!/usr/bin/env bash
# dingtail's benchmarks, side by side with the tools an ops team would otherwise use (issue 7).
#
#   benches/run.sh [scan|catchup|latency|idle|flood|steady|all|cluster]...      (default: all)
#
# `cluster` (not part of `all`: it needs redis-server and takes two minutes) runs
# benches/cluster_bench.py: BENCH_CLUSTER_HOSTS=10 daemons × BENCH_CLUSTER_RATE=10000 lines/s for
# BENCH_CLUSTER_SECS=60 through one redis-server (apt-get install redis-server).
#
# Build first: `cargo build --release` (the script uses $DINGTAIL, else
# ${CARGO_TARGET_DIR:-target}/release/dingtail). Comparison tools come from Debian packages and
# are never installed here; a missing one is reported and its comparison skipped:
#   apt-get install ripgrep swatch fail2ban hyperfine time
#
# Settings (environment):
#   BENCH_SIZE=1G        size of the generated log for scan and catch-up (K/M/G suffixes)
#   BENCH_SLICE=16M      slice of it given to the slow tools (swatchdog, fail2ban-regex)
#   BENCH_RUNS=3         runs per scan measurement; medians are reported
#   BENCH_SEED=1         generator seed
#   BENCH_DIR=/tmp/dingtail-bench   scratch directory (the big log lives here)
#   BENCH_KEEP=0         1 keeps the generated log for the next run
#   BENCH_RESULTS=benches/results/<UTC time>.txt   where figures are appended (`key value` lines)
#   BENCH_FILES=1000 BENCH_LINES=1000   latency: watched files and lines appended
#   BENCH_IDLE_SECS=60   idle: how long to watch BENCH_FILES quiet files
#   BENCH_FLOOD_RATE=100000 BENCH_FLOOD_SECS=30   flood: matching lines per second, seconds
#   BENCH_STEADY_RATES=100,1000,10000,50000   steady: lines a second (one file, 100 rules)
#   BENCH_STEADY_WRITES=100 BENCH_STEADY_SECS=15   steady: writes a second, seconds measured
#   BENCH_STEADY_WARMUP=3   steady: seconds written before measuring (start-up excluded)
#   BENCH_STEADY_POOL=16M   steady: size of the generated lines the writer cycles through
#   BENCH_STEADY_TOOLS=dingtail,swatchdog         steady: which followers (BENCH_RUNS runs each)
#
# Everything listens on and talks to 127.0.0.1 only.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
SIZE=${BENCH_SIZE:-1G}
SLICE=${BENCH_SLICE:-16M}
RUNS=${BENCH_RUNS:-3}
SEED=${BENCH_SEED:-1}
WORK=${BENCH_DIR:-/tmp/dingtail-bench}
KEEP=${BENCH_KEEP:-0}
DINGTAIL=${DINGTAIL:-${CARGO_TARGET_DIR:-$ROOT/target}/release/dingtail}
RESULTS=${BENCH_RESULTS:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ).txt}
PYTHON=${PYTHON:-python3}

die() { echo "run.sh: $*" >&2; exit 1; }

[ -x "$DINGTAIL" ] || die "no dingtail binary at $DINGTAIL (cargo build --release, or set DINGTAIL)"
command -v "$PYTHON" >/dev/null || die "python3 is needed for the generator and the daemon benchmarks"
mkdir -p "$WORK" "$(dirname "$RESULTS")"

# `report KEY VALUE...`: print a figure and append it to the results file.
report() {
    printf '%-44s %s\n' "$1" "${*:2}"
    printf '%s %s\n' "$1" "${*:2}" >>"$RESULTS"
}

# `have TOOL PACKAGE`: true when TOOL is installed, else says what to install.
have() {
    if command -v "$1" >/dev/null 2>&1; then
        return 0
    fi
    echo "  missing: $1 (apt-get install $2); skipping its comparison" >&2
    report "skipped.$1" "not installed (apt-get install $2)"
    return 1
}

# `now`: seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }

# `calc EXPR`: floating-point arithmetic (awk's), an integer printed as such, else 3 decimals.
calc() { awk "BEGIN { v = $1; if (v == int(v)) printf \"%d\\n\", v; else printf \"%.3f\\n\", v }"; }

# `median X...`
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# `seconds OUTFILE CMD...`: runs CMD with stdout to OUTFILE, prints its wall time in seconds.
seconds() {
    local out=$1 start end
    shift
    start=$(now)
    "$@" >"$out" 2>/dev/null || true
    end=$(now)
    calc "$end - $start"
}

# `median_of OUTFILE CMD...`: median wall time of $RUNS runs of CMD (start-up included, as for
# every tool), the last run's stdout in OUTFILE.
median_of() {
    local out=$1 times=() i
    shift
    for ((i = 0; i < RUNS; i++)); do
        times+=("$(seconds "$out" "$@")")
    done
    median "${times[@]}"
}

# The generated log of $SIZE bytes (kept across runs of one invocation).
LOG=$WORK/bench-$SIZE-seed$SEED.log
make_log() {
    if [ ! -s "$LOG" ]; then
        echo "generating $SIZE of logs into $LOG ..."
        "$PYTHON" "$HERE/genlog.py" --size "$SIZE" --seed "$SEED" >"$LOG"
    fi
    LOG_BYTES=$(stat -c %s "$LOG")
    LOG_LINES=$(wc -l <"$LOG")
}

# A config for `dingtail test` and `dingtail run`: one input `app` over $1, a `stdout` robot.
# $2: extra input settings (YAML, indented by 4), $3: extra robot settings.
write_config() {
    local paths=$1 input_extra=${2:-} robot_extra=${3:-} file=$WORK/dingtail.yaml
    {
        printf 'state_dir: %s/state\nhost: bench\nreload_on_change: false\n' "$WORK"
        printf 'inputs:\n  app:\n    paths: ["%s"]\n%s' "$paths" "$input_extra"
        printf 'robots:\n  ops:\n    webhook: stdout\n%s' "$robot_extra"
        printf 'rules: []\n'
    } >"$file"
    echo "$file"
}

scan() {
    echo "== scan: $SIZE, $RUNS runs each, medians (MB = 10^6 bytes)"
    make_log
    local config
    config=$(write_config "$LOG")
    report scan.log.bytes "$LOG_BYTES"
    report scan.log.lines "$LOG_LINES"
    # Warm the page cache so that every tool reads from memory.
    cat "$LOG" >/dev/null
    local n dt_s dt_count rg_s rg_count grep_s grep_count
    for n in 10 100; do
        local rules=$HERE/rules-$n.yaml
        "$PYTHON" "$HERE/patterns.py" "$rules" rust >"$WORK/p$n.rust"
        "$PYTHON" "$HERE/patterns.py" "$rules" ere >"$WORK/p$n.ere"
        dt_s=$(median_of "$WORK/dt.out" "$DINGTAIL" test -c "$config" --rules "$rules" "$LOG" --samples 0)
        dt_count=$(sed -n 's/^matched \([0-9]*\) of.*/\1/p' "$WORK/dt.out" | head -1)
        [ -n "$dt_count" ] || die "dingtail test failed: $DINGTAIL test -c $config --rules $rules $LOG"
        report "scan.rules$n.dingtail.seconds" "$dt_s"
        report "scan.rules$n.dingtail.mb_per_s" "$(calc "$LOG_BYTES / $dt_s / 1e6")"
        report "scan.rules$n.dingtail.lines_per_s" "$(calc "int($LOG_LINES / $dt_s)")"
        report "scan.rules$n.dingtail.matched_lines" "${dt_count:-?}"
        if have rg ripgrep; then
            rg_s=$(median_of "$WORK/rg.out" rg --count -j1 --no-mmap -f "$WORK/p$n.rust" "$LOG")
            rg_count=$(cat "$WORK/rg.out")
            report "scan.rules$n.rg.seconds" "$rg_s"
            report "scan.rules$n.rg.mb_per_s" "$(calc "$LOG_BYTES / $rg_s / 1e6")"
            report "scan.rules$n.rg.matched_lines" "$rg_count"
            report "scan.rules$n.ratio.dingtail_over_rg" "$(calc "$rg_s / $dt_s")"
        fi
        grep_s=$(median_of "$WORK/grep.out" grep -E -c -f "$WORK/p$n.ere" "$LOG")
        grep_count=$(cat "$WORK/grep.out")
        report "scan.rules$n.grep.seconds" "$grep_s"
        report "scan.rules$n.grep.mb_per_s" "$(calc "$LOG_BYTES / $grep_s / 1e6")"
        report "scan.rules$n.grep.matched_lines" "$grep_count"
        report "scan.rules$n.ratio.dingtail_over_grep" "$(calc "$grep_s / $dt_s")"
    done
    report scan.ratio.rules100_over_rules10_time \
        "$(calc "$(grep '^scan.rules100.dingtail.seconds' "$RESULTS" | tail -1 | cut -d' ' -f2) / $(grep '^scan.rules10.dingtail.seconds' "$RESULTS" | tail -1 | cut -d' ' -f2)")"

    # The slow tools get a slice (cut at a line end) and are scaled to MB/s.
    local slice=$WORK/slice.log
    head -c "$("$PYTHON" -c "import sys; sys.path.insert(0, '$HERE'); from genlog import parse_size; print(parse_size('$SLICE'))")" "$LOG" | sed '$d' >"$slice"
    local slice_bytes
    slice_bytes=$(stat -c %s "$slice")
    report scan.slice.bytes "$slice_bytes"
    local dt_slice_s
    for n in 10 100; do
        dt_slice_s=$(median_of "$WORK/dt.out" "$DINGTAIL" test -c "$config" --rules "$HERE/rules-$n.yaml" "$slice" --samples 0)
        report "scan.slice.rules$n.dingtail.mb_per_s" "$(calc "$slice_bytes / $dt_slice_s / 1e6")"
        if have swatchdog swatch; then
            "$PYTHON" "$HERE/patterns.py" "$HERE/rules-$n.yaml" swatch >"$WORK/p$n.swatch"
            local sw_s
            sw_s=$(median_of "$WORK/sw.out" swatchdog -c "$WORK/p$n.swatch" --examine="$slice" --script-dir="$WORK")
            report "scan.slice.rules$n.swatchdog.mb_per_s" "$(calc "$slice_bytes / $sw_s / 1e6")"
            report "scan.slice.rules$n.swatchdog.matched_lines" "$(grep -cv '^\(\*\*\* swatchdog\|$\)' "$WORK/sw.out" || true)"
            report "scan.slice.rules$n.ratio.dingtail_over_swatchdog" "$(calc "$sw_s / $dt_slice_s")"
            # Throughput against throughput: dingtail's over the whole log (start-up amortised).
            report "scan.rules$n.ratio.dingtail_over_swatchdog_mb_per_s" \
                "$(calc "$LOG_BYTES / $(grep "^scan.rules$n.dingtail.seconds" "$RESULTS" | tail -1 | cut -d' ' -f2) / ($slice_bytes / $sw_s)")"
        fi
    done
    if have fail2ban-regex fail2ban; then
        # fail2ban-regex takes one failregex, which must name the host: the sshd rule of rules-10.
        local f2b_rule=$WORK/rule-sshd.yaml
        grep -A4 '^- name: sshd-auth-failure' "$HERE/rules-10.yaml" >"$f2b_rule"
        dt_slice_s=$(median_of "$WORK/dt.out" "$DINGTAIL" test -c "$config" --rules "$f2b_rule" "$slice" --samples 0)
        report "scan.slice.rules1.dingtail.mb_per_s" "$(calc "$slice_bytes / $dt_slice_s / 1e6")"
        local f2b_s
        f2b_s=$(median_of "$WORK/f2b.out" fail2ban-regex "$slice" \
            'sshd\[\d+\]: Failed password for (?:invalid user )?\S+ from <HOST>')
        report "scan.slice.rules1.fail2ban_regex.mb_per_s" "$(calc "$slice_bytes / $f2b_s / 1e6")"
        report "scan.slice.rules1.fail2ban_regex.matched_lines" \
            "$(sed -n 's/.* \([0-9]*\) matched.*/\1/p' "$WORK/f2b.out" | head -1)"
        report "scan.slice.rules1.ratio.dingtail_over_fail2ban_regex" "$(calc "$f2b_s / $dt_slice_s")"
        report "scan.rules10.ratio.dingtail_over_fail2ban_regex_mb_per_s" \
            "$(calc "$LOG_BYTES / $(grep '^scan.rules10.dingtail.seconds' "$RESULTS" | tail -1 | cut -d' ' -f2) / ($slice_bytes / $f2b_s)")"
    fi
}

# The daemon benchmarks drive `dingtail run` from Python (stand-in, /proc, timers).
daemon_bench() {
    "$PYTHON" "$HERE/daemon_bench.py" "$1" --dingtail "$DINGTAIL" --work "$WORK" --results "$RESULTS"
}

catchup() {
    echo "== catch-up: $SIZE from the beginning, stdout robot"
    make_log
    BENCH_LOG=$LOG BENCH_LOG_LINES=$LOG_LINES daemon_bench catchup
}

latency() {
    echo "== latency: ${BENCH_FILES:-1000} files, ${BENCH_LINES:-1000} lines, linger 0s, stand-in on 127.0.0.1"
    daemon_bench latency
}

idle() {
    echo "== idle: ${BENCH_FILES:-1000} quiet files for ${BENCH_IDLE_SECS:-60} s"
    daemon_bench idle
}

flood() {
    echo "== flood: ${BENCH_FLOOD_RATE:-100000} lines/s for ${BENCH_FLOOD_SECS:-30} s"
    daemon_bench flood
}

steady() {
    echo "== steady: one file written ${BENCH_STEADY_WRITES:-100} times a second at ${BENCH_STEADY_RATES:-100,1000,10000,50000} lines/s, 100 rules, dingtail run vs swatchdog, $RUNS runs"
    BENCH_RUNS=$RUNS daemon_bench steady
}

cluster() {
    echo "== cluster: ${BENCH_CLUSTER_HOSTS:-10} daemons × ${BENCH_CLUSTER_RATE:-10000} lines/s for ${BENCH_CLUSTER_SECS:-60} s, one Redis"
    "$PYTHON" "$HERE/cluster_bench.py" --dingtail "$DINGTAIL" --work "$WORK" --results "$RESULTS"
}

cleanup() {
    if [ "$KEEP" != 1 ]; then
        rm -f "$WORK"/bench-*.log "$WORK/slice.log" "$WORK/flood.log" "$WORK/catchup.out" "$WORK"/steady-pool-*.log
    fi
}
trap cleanup EXIT

[ $# -gt 0 ] || set -- all
{
    echo "# dingtail benchmarks $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm), $(nproc) cores"
    echo "# $("$DINGTAIL" --version 2>/dev/null || echo dingtail), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
} >>"$RESULTS"
status=0
for what in "$@"; do
    case $what in
    scan | catchup | latency | idle | flood | steady | cluster) ;;
    all) set -- scan catchup latency idle flood steady ;;
    *) die "unknown benchmark \`$what\` (scan, catchup, latency, idle, flood, steady, all, cluster)" ;;
    esac
done
# One benchmark failing does not stop the others; the run fails at the end.
for what in "$@"; do
    if ! "$what"; then
        report "failed.$what" "see the output above"
        status=1
    fi
done
echo "results: $RESULTS"
exit $status
