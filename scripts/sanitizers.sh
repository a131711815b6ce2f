#!/usr/bin/env bash
# Runs the whole Swift test suite under a sanitizer (docs/FUZZING.md, "Sanitizers"): the test
# binary and the kvd and kvctl processes the real-process tests start are all built with it.
#
#   scripts/sanitizers.sh address   # AddressSanitizer: a process stops at its first error
#   scripts/sanitizers.sh thread    # ThreadSanitizer: reports are collected, then grouped
#
# Each has its own build folder (.build-asan, .build-tsan; about 6 minutes the first time). The
# suite runs serially, as scripts/test.sh runs it. Under ThreadSanitizer every process writes its
# reports to a folder (printed at the end) instead of failing, and scripts/tsan-report.py then
# fails the run if a report shows an access not under a Mutex. Extra arguments go to `swift test`
# (e.g. --filter PeerTLSTests).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-}
shift || true
case "$kind" in
address) scratch=.build-asan ;;
thread) scratch=.build-tsan ;;
*)
    echo "usage: scripts/sanitizers.sh address|thread [swift test arguments]" >&2
    exit 64
    ;;
esac
swift build --build-tests --sanitize="$kind" --scratch-path "$scratch"
if [ "$kind" = address ]; then
    # Leaks are not checked: the test processes end with live event loops and caches by design.
    ASAN_OPTIONS=detect_leaks=0 swift test --skip-build --no-parallel --sanitize=address --scratch-path "$scratch" "$@"
    exit
fi
reports=$(mktemp -d /tmp/kvd-tsan-XXXXXX)
set +e
# exitcode=0: a process with reports exits as it would have, so the tests judge its behaviour
# and the reports are judged below.
TSAN_OPTIONS="halt_on_error=0 exitcode=0 log_path=$reports/r" \
    swift test --skip-build --no-parallel --sanitize=thread --scratch-path "$scratch" "$@"
status=$?
set -e
echo
echo "ThreadSanitizer reports: $reports"
python3 scripts/tsan-report.py "$reports" || status=1
exit "$status"
