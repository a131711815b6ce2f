#!/usr/bin/env bash
# Runs the whole kvd test suite: installs what a fresh machine lacks, builds, then runs every
# test (Raft paper tests, seeded simulations, storage contract and crash tests, checker tests,
# protocol and transport tests, real-process cluster tests), then a short fuzz pass, then the
# network fault harness, then Redis client libraries against a leader and a follower.
# RAFT_SIM_SEEDS / RAFT_SIM_FIRST_SEED and KV_SIM_SEEDS / KV_SIM_FIRST_SEED tune the simulations.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# Serially: many tests are CPU-bound simulations that would hold both threads of a 2-core
# machine's cooperative pool, starving the network tests that run against real deadlines
# (seen as flaky client and transport tests). Serial costs about a minute (~135 s in all).
swift test --no-parallel "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# The steps after the Swift tests run while everything so far passed; a failing step's status
# becomes the script's.
step() { # label, command...
    local label=$1
    shift
    [ "$status" -eq 0 ] || return 0
    set +e
    "$@"
    local step_status=$?
    set -e
    if [ "$step_status" -ne 0 ]; then
        echo "$label: $* failed with status $step_status"
        status=$step_status
    fi
}
# Then a short fuzz pass (docs/FUZZING.md): each libFuzzer target for 15 s from its committed
# seeds; a crash, hang or out-of-memory input fails this script and is kept in Fuzz/work/.
step fuzz scripts/fuzz.sh --short
# Then the network fault harness against release binaries in network namespaces (needs root;
# KVD_FAULTS_OPTIONAL=1 lets it skip where namespaces are unavailable; docs/FAULTS.md). Its
# safety verdicts and negative control are asserted, so its failure fails this script.
step faults scripts/faults.sh --short
# Then the client compatibility checks (docs/REDIS-COMPAT.md): redis-py 8 (RESP3 and RESP2),
# redis-cli -3 and ruby-redis against the leader and a follower of a local cluster of release
# binaries. It installs its clients itself; any failed check fails this script.
step client-compat scripts/client-compat.sh
# Every test is a Swift Testing test (XCTest reports 0); repeat its count as the plain closing line.
summary=$(grep -Eo 'Test run with [0-9]+ tests?' "$log" | tail -1 | grep -Eo '[0-9]+' || true)
if [ "$status" -eq 0 ] && [ -n "$summary" ]; then
    echo "tests: $summary passed, 0 failed"
fi
exit "$status"
