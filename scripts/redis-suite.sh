#!/usr/bin/env bash
# Runs Redis's own Tcl test suite (Debian's redis 7.0 source package) against a local 3-node kvd
# cluster in the suite's external-server mode, one unit at a time, and reports passed, failed,
# ignored and skipped tests per unit (not part of scripts/test.sh; docs/REDIS-COMPAT.md).
#
#   scripts/redis-suite.sh [OPTIONS]
#     --out DIR          where the logs and summary.md/summary.json go (default run/redis-suite)
#     --follower         point the suite at a follower instead of the leader
#     --against-redis    point it at a fresh redis-server instead of kvd (the reference: shows what
#                        the same units and exclusions give on Redis itself)
#     --units "U ..."    the units to run (default: the seven below)
#     --unit-timeout S   wall-clock limit per unit in seconds (default 600); a unit that hits it
#                        is reported as "timeout (wall clock)"
#     --test-timeout S   the suite's own --timeout: seconds without progress before it gives up
#                        (default 120)
#   KVD_SKIP_BUILD=1 KVD_BIN_DIR=DIR   use release binaries already built (kvd, kvctl)
#   KVD_REDIS_SUITE_CACHE=DIR          where the unpacked source lives (~/.cache/kvd-redis-suite)
#   KVD_COMPAT_BASE_PORT=N             first port tried for the cluster (default 17500)
#
# The first run installs tcl and dpkg-dev, adds a deb-src entry mirroring the deb entries of
# /etc/apt/sources.list.d/debian.sources if there is none, and fetches and unpacks the source
# (apt-get source redis); later runs use the cached tree and need no network.
#
# Options passed to ./runtest, and why:
#   --host/--port        external-server mode: the suite talks to kvd and spawns no redis-server
#   --singledb           kvd has one database; without it the suite SELECTs database 9
#   --ignore-encoding    kvd has no OBJECT ENCODING; skip the encoding assertions
#   --ignore-digest      kvd has no DEBUG DIGEST; skip the dataset digest comparisons
#   --durable            a test that raises an error is counted as failed and the unit goes on
#   --timeout            the suite's no-progress timeout (above)
#   --tags               excludes tests that need what an external server without DEBUG,
#                        replication or runtime configuration cannot give (the list below)
# Exit status: 0 when every unit ran (whatever its failures), 1 on a setup error.
set -euo pipefail
cd "$(dirname "$0")/.."

default_units="unit/type/string unit/type/incr unit/keyspace unit/expire unit/multi unit/scan unit/protocol"
# Tag exclusions (tests/README.md in the Redis tree lists them):
#   needs:debug             DEBUG (RELOAD, SLEEP, SET-ACTIVE-EXPIRE, ...), OBJECT, or other debugging commands
#   needs:repl              SYNC/replication stream (attach_to_replication_stream) or a replica
#   needs:pfdebug           PFDEBUG
#   needs:config-maxmemory  CONFIG SET maxmemory / eviction policies
#   needs:config-resetstat  CONFIG RESETSTAT
#   needs:reset             RESET
#   needs:save              SAVE (an RDB file)
#   needs:latency           LATENCY monitor
#   needs:local-process     the server process on this machine (signals, its pid)
# The harness itself also leaves out tests tagged external:skip (external mode) and
# singledb:skip (--singledb).
excluded_tags="-needs:debug -needs:repl -needs:pfdebug -needs:config-maxmemory -needs:config-resetstat -needs:reset -needs:save -needs:latency -needs:local-process"

out=run/redis-suite
follower_mode=0
against_redis=0
units=$default_units
unit_timeout=600
test_timeout=120
while (($#)); do
    case $1 in
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --follower) follower_mode=1; shift ;;
        --against-redis) against_redis=1; shift ;;
        --units) units=${2:?--units needs a list}; shift 2 ;;
        --unit-timeout) unit_timeout=${2:?}; shift 2 ;;
        --test-timeout) test_timeout=${2:?}; shift 2 ;;
        -h | --help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "redis-suite.sh: unknown option $1 (--help lists them)" >&2; exit 2 ;;
    esac
done
cache=${KVD_REDIS_SUITE_CACHE:-$HOME/.cache/kvd-redis-suite}
base_port=${KVD_COMPAT_BASE_PORT:-17500}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# apt_install PACKAGE...: installs what is missing, saying what; apt-get update only if needed.
apt_install() {
    local missing=() package
    for package in "$@"; do dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package"); done
    ((${#missing[@]})) || return 0
    echo "redis-suite.sh: installing ${missing[*]} (apt-get)"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
        { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null; }
}

# has_deb_src: some apt source already gives source packages (one-line or deb822 format).
has_deb_src() {
    grep -Eqs '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list ||
        grep -Eqs '^Types:.*deb-src' /etc/apt/sources.list.d/*.sources
}

# add_deb_src: a deb-src twin of each deb stanza of Debian's deb822 file, in a file of its own,
# so the machine's own entries stay as they were.
add_deb_src() {
    local debian=/etc/apt/sources.list.d/debian.sources
    [ -f "$debian" ] || { echo "redis-suite.sh: no deb-src entry and no $debian to mirror; add a deb-src line for Debian's main archive" >&2; exit 1; }
    echo "redis-suite.sh: adding /etc/apt/sources.list.d/kvd-deb-src.sources (deb-src twin of $debian)" >&2
    sed -e 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb-src/' "$debian" | as_root tee /etc/apt/sources.list.d/kvd-deb-src.sources >/dev/null
    as_root apt-get update -qq >&2
}

# redis_tree: prints the unpacked source tree, fetching it the first time (its messages go to
# stderr: the caller reads the path from stdout).
redis_tree() {
    local tree
    tree=$(find "$cache/src" -mindepth 1 -maxdepth 1 -type d -name 'redis-*' 2>/dev/null | sort | tail -1)
    if [ -n "$tree" ] && [ -x "$tree/runtest" ] && [ -f "$tree/tests/test_helper.tcl" ]; then
        echo "$tree"
        return
    fi
    has_deb_src || add_deb_src
    echo "redis-suite.sh: fetching Debian's redis source package into $cache/src (apt-get source redis)" >&2
    mkdir -p "$cache/src"
    (cd "$cache/src" && apt-get source -qq redis >/dev/null 2>"$cache/apt-source.log") || {
        # The package lists may predate the deb-src entry.
        as_root apt-get update -qq >&2
        (cd "$cache/src" && apt-get source -qq redis >/dev/null 2>"$cache/apt-source.log")
    } || { echo "redis-suite.sh: apt-get source redis failed; see $cache/apt-source.log" >&2; exit 1; }
    tree=$(find "$cache/src" -mindepth 1 -maxdepth 1 -type d -name 'redis-*' | sort | tail -1)
    [ -n "$tree" ] && [ -x "$tree/runtest" ] || { echo "redis-suite.sh: no runtest in the unpacked source under $cache/src" >&2; exit 1; }
    echo "$tree"
}

# run_unit UNIT: one ./runtest for one unit under a wall-clock timeout (its own process group,
# so the test client it forks dies with it); writes <slug>.log and <slug>.status ("rc seconds").
run_unit() {
    local unit=$1 slug=${1//\//_} start rc
    start=$(date +%s)
    set +e
    (cd "$tree" && TERM=dumb timeout --kill-after=10 "$unit_timeout" ./runtest \
        --host 127.0.0.1 --port "$target_port" --singledb --ignore-encoding --ignore-digest \
        --durable --timeout "$test_timeout" --clients 1 --single "$unit" --tags "$excluded_tags" \
        </dev/null >"$out/$slug.log" 2>&1)
    rc=$?
    set -e
    echo "$rc $(($(date +%s) - start))" >"$out/$slug.status"
    printf 'redis-suite.sh: %-18s exit %3s in %4ss: %s ok, %s err, %s ignore, %s skip%s\n' "$unit" "$rc" \
        "$(($(date +%s) - start))" "$(grep -c '^\[ok\]' "$out/$slug.log" || true)" \
        "$(grep -c '^\[err\]' "$out/$slug.log" || true)" "$(grep -c '^\[ignore\]' "$out/$slug.log" || true)" \
        "$(grep -c '^\[skip\]' "$out/$slug.log" || true)" \
        "$(grep -q '^\[exception\]' "$out/$slug.log" && echo ', EXCEPTION' || true)"
}

command -v python3 >/dev/null || { echo "redis-suite.sh: python3 not found" >&2; exit 1; }
apt_install tcl dpkg-dev redis-tools
[ "$against_redis" = 0 ] || apt_install redis-server
tree=$(redis_tree)
echo "redis-suite.sh: Redis test suite from $tree"

mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/*.log "$out"/*.status "$out/summary.md" "$out/summary.json"
work=$(mktemp -d "${TMPDIR:-/tmp}/kvd-redis-suite-XXXXXX")
declare -A node_pid=()
redis_pid=""
source scripts/lib/local-cluster.sh
source scripts/lib/compat-cluster.sh
cleanup() {
    compat_stop_cluster
    # shellcheck disable=SC2086 # redis_pid is empty or one pid
    kill_and_reap $redis_pid
    if [ -n "${KEEP_WORK:-}" ]; then echo "redis-suite.sh: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$against_redis" = 1 ]; then
    read -r -a ports <<<"$(free_ports 1)"
    target_port=${ports[0]}
    start_redis redis-suite.sh "$target_port"
    target="redis-server $(redis-server --version | grep -o 'v=[0-9.]*' | cut -c3-) on 127.0.0.1:$target_port"
else
    release_binaries redis-suite.sh
    compat_start_cluster redis-suite.sh redis-suite "$base_port"
    if [ "$follower_mode" = 1 ]; then node=$follower role=follower; else node=$leader role=leader; fi
    target_port=$(client_port "$node")
    target="kvd $role (node $node of 3) on 127.0.0.1:$target_port"
    echo "redis-suite.sh: 3-node kvd cluster in $work, leader node $leader"
fi
echo "redis-suite.sh: running against $target; logs in $out"
echo "redis-suite.sh: excluded tags: $excluded_tags"

for unit in $units; do
    [ -f "$tree/tests/$unit.tcl" ] || { echo "redis-suite.sh: no unit $unit in $tree/tests" >&2; exit 1; }
    run_unit "$unit"
done
{
    echo "target: $target"
    echo "suite: $tree"
    echo "excluded tags: $excluded_tags"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    [ "$against_redis" = 1 ] || echo "kvd: $kvd"
} >"$out/settings.txt"
echo
# shellcheck disable=SC2086 # units is a space-separated list
python3 scripts/lib/redis-suite-report.py --out "$out" --target "$target" --tree "$tree" --probe-port "$target_port" $units
echo
echo "redis-suite.sh: summary in $out/summary.md"
