#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/Sources, declared in Package.swift only when KVD_FUZZ=1) and
# runs each in turn, starting from its committed seeds (Fuzz/corpus/TARGET) and the corpus it grew
# before (Fuzz/work/TARGET/corpus, not committed). Prints per target the executions, exec/s,
# coverage (libFuzzer's cov and ft) and corpus size; fails if any target crashes, times out, runs
# out of memory or leaves a crash-/leak-/timeout-/oom- artifact (docs/FUZZING.md).
#
#   scripts/fuzz.sh [--short] [--seconds N] [--runs N] [--asan] [--write-seeds] [TARGET...]
#
#   --seconds N    run each target for N seconds (default 60)
#   --runs N       stop each target after N executions (with --seconds: whichever comes first)
#   --short        15 seconds per target: the mode for scripts/test.sh
#   --asan         add AddressSanitizer (its own build directory, about 3x slower)
#   --write-seeds  regenerate Fuzz/corpus/TARGET with the real encoders and stop
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(fuzz-resp-request fuzz-resp-reply fuzz-peer-wire fuzz-backup fuzz-config)
seconds=60
runs=""
sanitizers=fuzzer
scratch=.build-fuzz
write_seeds=0
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --short) seconds=15 ;;
        --seconds) seconds="$2"; shift ;;
        --runs) runs="$2"; shift ;;
        --asan) sanitizers=fuzzer,address; scratch=.build-fuzz-asan ;;
        --write-seeds) write_seeds=1 ;;
        fuzz-*) targets+=("$1") ;;
        *) echo "usage: scripts/fuzz.sh [--short] [--seconds N] [--runs N] [--asan] [--write-seeds] [TARGET...]" >&2; exit 2 ;;
    esac
    shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

# Release builds of the fuzz products only, in a build directory of their own, so the ordinary
# .build is untouched. -sanitize=fuzzer instruments every Swift module for coverage and links
# libFuzzer; lld, because gold fails on these links (an internal error in its DWARF reader).
export KVD_FUZZ=1
flags=(-c release --scratch-path "$scratch" -Xswiftc "-sanitize=$sanitizers" -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld)
for target in "${targets[@]}"; do
    log=$(mktemp)
    if ! swift build "${flags[@]}" --product "$target" >"$log" 2>&1; then
        grep -v "Cannot export local symbol" "$log" | tail -30
        rm -f "$log"
        echo "fuzz: building $target failed"
        exit 1
    fi
    rm -f "$log"
done
bin="$scratch/release"

# A Swift runtime error is a crash for libFuzzer; skip the slow symbolicating backtracer.
export SWIFT_BACKTRACE=enable=no

if [ "$write_seeds" -eq 1 ]; then
    for target in "${targets[@]}"; do
        mkdir -p "Fuzz/corpus/$target"
        KVD_FUZZ_WRITE_SEEDS="Fuzz/corpus/$target" "$bin/$target"
        echo "fuzz: seeds of $target: $(ls "Fuzz/corpus/$target" | wc -l) files in Fuzz/corpus/$target"
    done
    exit 0
fi

status=0
printf '%-18s %12s %8s %6s %7s %9s %10s  %s\n' target executions exec/s cov ft "corpus" bytes result
for target in "${targets[@]}"; do
    work="Fuzz/work/$target"
    mkdir -p "$work/corpus"
    rm -f "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*
    options=(-print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 -max_total_time="$seconds"
        -artifact_prefix="$work/")
    [ -z "$runs" ] || options+=(-runs="$runs")
    # Streams longer than this only repeat what short ones reach (the RESP targets use limits of
    # 64 to 256 bytes) and slow every execution down.
    case "$target" in
        fuzz-resp-*) options+=(-dict=Fuzz/dict/resp.dict -max_len=1024) ;;
        fuzz-peer-wire) options+=(-max_len=1024) ;;
        *) options+=(-max_len=2048) ;;
    esac
    set +e
    "$bin/$target" "${options[@]}" "$work/corpus" "Fuzz/corpus/$target" >"$work/log" 2>&1
    rc=$?
    set -e
    last=$(grep -a -E '^#[0-9]+' "$work/log" | tail -1)
    field() { sed -n "s/.* $1: *\([^ ]*\).*/\1/p" <<<"$last"; }
    stat() { sed -n "s/^stat::$1: *//p" "$work/log" | tail -1; }
    corpus=$(field corp)
    artifacts=$(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null || true)
    result=ok
    if [ "$rc" -ne 0 ] || [ -n "$artifacts" ]; then
        result="FAILED (exit $rc) ${artifacts//$'\n'/ }"
        status=1
    fi
    printf '%-18s %12s %8s %6s %7s %9s %10s  %s\n' "$target" "$(stat number_of_executed_units)" \
        "$(stat average_exec_per_sec)" "$(field cov)" "$(field ft)" "${corpus%%/*}" "${corpus#*/}" "$result"
    if [ "$result" != ok ]; then
        grep -a -E 'Fatal error|ERROR:|SUMMARY|Test unit written' "$work/log" | head -8 | sed 's/^/    /'
    fi
done
if [ "$status" -ne 0 ]; then
    echo "fuzz: a target failed; logs and artifacts are in Fuzz/work/TARGET/ (reproduce: $bin/TARGET FILE)"
fi
exit "$status"
