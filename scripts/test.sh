#!/usr/bin/env bash
# Runs the whole kvd test suite: installs what a fresh machine lacks, builds, then runs every
# test (Raft paper tests, seeded simulations, storage contract and crash tests, checker tests).
# RAFT_SIM_SEEDS / RAFT_SIM_FIRST_SEED and KV_SIM_SEEDS / KV_SIM_FIRST_SEED tune the simulations.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
swift test
