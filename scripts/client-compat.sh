#!/usr/bin/env bash
# Client compatibility checks: starts a local 3-node kvd cluster from release binaries and drives
# it with real Redis clients, against the leader and against a follower:
#
#   redis-py 8   default settings (redis.Redis(port=P): RESP3 through HELLO 3) and protocol=2:
#                SET/GET/DEL, EXPIRE/TTL, INCR, MSET/MGET, GETSET/GETDEL, SET NX PX,
#                pipeline() (MULTI/EXEC), pipeline(transaction=False), scan_iter, WATCH/MULTI/EXEC
#                and WatchError when a watched key changed (scripts/lib/client-compat.py)
#   redis-cli -3 SET, GET, HELLO 3
#   ruby-redis   Debian's: SET/GET, EXPIRE/TTL, MULTI/EXEC, SCAN (scripts/lib/client-compat.rb)
#
# Every check prints "PASS <client> <role>: <what>" or "FAIL <client> <role>: <what>: <why>";
# the last line is "client-compat: N passed, M failed" and the exit status is 1 if any check
# failed (2 on a setup error).
#
#   scripts/client-compat.sh [--roles "leader follower"] [--clients "redis-py redis-cli ruby"]
#   scripts/client-compat.sh --against-redis   the same checks against a fresh redis-server (no
#                                              kvd): every check must pass there, which shows the
#                                              checks themselves expect Redis's behaviour
#   KVD_SKIP_BUILD=1 KVD_BIN_DIR=DIR   use release binaries already built (kvd, kvctl)
#   KVD_CLIENT_VENV=DIR                venv with redis-py 8 (default ~/.cache/kvd-client-venv)
#   KVD_COMPAT_BASE_PORT=N             first port tried for the cluster (default 17600)
#   CLIENT_COMPAT_TIMEOUT=S            limit for one client run, in seconds (default 120)
#
# What it needs (redis-tools, ruby-redis, the venv) it installs through
# `scripts/install-deps.sh client-compat`, which does nothing once everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

roles="leader follower"
clients="redis-py redis-cli ruby"
against_redis=0
while (($#)); do
    case $1 in
        --against-redis) against_redis=1; roles=redis; shift ;;
        --roles) roles=${2:?}; shift 2 ;;
        --clients) clients=${2:?}; shift 2 ;;
        -h | --help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "client-compat.sh: unknown option $1 (--help lists them)" >&2; exit 2 ;;
    esac
done
venv=${KVD_CLIENT_VENV:-$HOME/.cache/kvd-client-venv}
base_port=${KVD_COMPAT_BASE_PORT:-17600}
client_timeout=${CLIENT_COMPAT_TIMEOUT:-120}

export KVD_CLIENT_VENV=$venv
scripts/install-deps.sh client-compat || exit 2
source scripts/lib/local-cluster.sh
source scripts/lib/compat-cluster.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/kvd-client-compat-XXXXXX")
declare -A node_pid=()
redis_pid=""
cleanup() {
    compat_stop_cluster
    # shellcheck disable=SC2086 # redis_pid is empty or one pid
    kill_and_reap $redis_pid
    if [ -n "${KEEP_WORK:-}" ]; then echo "client-compat.sh: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$against_redis" = 1 ]; then
    command -v redis-server >/dev/null || { echo "client-compat.sh: --against-redis needs redis-server (apt-get install redis-server)" >&2; exit 2; }
    read -r -a ports <<<"$(free_ports 1)"
    redis_port=${ports[0]}
    start_redis client-compat.sh "$redis_port"
    server_name=redis
    echo "client-compat.sh: reference redis-server on 127.0.0.1:$redis_port"
else
    release_binaries client-compat.sh
    compat_start_cluster client-compat.sh client-compat "$base_port" || exit 2
    server_name=kvd
    echo "client-compat.sh: 3-node kvd cluster in $work; leader node $leader (127.0.0.1:$(client_port "$leader")), follower node $follower (127.0.0.1:$(client_port "$follower"))"
fi

passed=0
failed=0
# run_client NAME ROLE COMMAND...: runs one client's checks under a time limit, echoing its
# PASS/FAIL lines and counting them. A client that exits non-zero without printing a FAIL line
# (a crash, a missing library, the time limit) counts as one failure, named.
run_client() {
    local name=$1 role=$2 output rc
    shift 2
    set +e
    if declare -F "$1" >/dev/null; then
        output=$("$@" 2>&1) # a shell function: each of its calls has its own time limit
    else
        output=$(timeout --kill-after=5 "$client_timeout" "$@" 2>&1)
    fi
    rc=$?
    set -e
    [ -z "$output" ] || printf '%s\n' "$output"
    local pass fail
    pass=$(grep -c '^PASS ' <<<"$output" || true)
    fail=$(grep -c '^FAIL ' <<<"$output" || true)
    if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
        local why="exited with status $rc"
        [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || why="timed out after ${client_timeout}s"
        echo "FAIL $name $role: the client run $why"
        fail=1
    fi
    passed=$((passed + pass))
    failed=$((failed + fail))
}

# cli_check ROLE PORT WHAT EXPECTED-REGEX ARGS...: one redis-cli -3 call (10 s limit) whose
# output must match. --no-raw: the formatted output a person sees ("hello", (integer) 1, the
# HELLO map), which redis-cli otherwise drops when its output is not a terminal.
cli_check() {
    local role=$1 port=$2 what=$3 pattern=$4 reply
    shift 4
    reply=$(timeout 10 redis-cli -3 --no-raw -h 127.0.0.1 -p "$port" "$@" 2>&1) || true
    if grep -Eq "$pattern" <<<"$reply"; then
        echo "PASS redis-cli -3 $role: $what"
    else
        echo "FAIL redis-cli -3 $role: $what: got $(tr '\n' ' ' <<<"$reply" | cut -c1-200)"
        return 1
    fi
}

redis_cli_checks() { # ROLE PORT
    local role=$1 port=$2 key status=0
    key="compat:$role:cli:$RANDOM$RANDOM"
    cli_check "$role" "$port" "SET" '^OK$' SET "$key" hello || status=1
    cli_check "$role" "$port" "GET" '^"?hello"?$' GET "$key" || status=1
    # HELLO 3's map: redis-cli -3 prints it as `1# "server" => "kvd"` ... `3# "proto" => (integer) 3`.
    cli_check "$role" "$port" "HELLO 3 (proto 3)" '"proto" => \(integer\) 3' HELLO 3 || status=1
    cli_check "$role" "$port" "HELLO 3 (server $server_name)" "\"server\" => \"$server_name\"" HELLO 3 || status=1
    cli_check "$role" "$port" "DEL" '^\(integer\) 1$' DEL "$key" || status=1
    return "$status"
}

for role in $roles; do
    case $role in
        leader) node=$leader ;;
        follower) node=$follower ;;
        redis) node=redis ;;
        *) echo "client-compat.sh: unknown role $role (leader or follower)" >&2; exit 2 ;;
    esac
    if [ "$role" = redis ]; then port=$redis_port; else port=$(client_port "$node"); fi
    echo "client-compat.sh: --- $role (node $node, 127.0.0.1:$port) ---"
    for client in $clients; do
        case $client in
            redis-py)
                run_client redis-py "$role" "$venv/bin/python" scripts/lib/client-compat.py --port "$port" --role "$role"
                run_client redis-py "$role" "$venv/bin/python" scripts/lib/client-compat.py --port "$port" --role "$role" --protocol 2
                ;;
            redis-cli) run_client "redis-cli -3" "$role" redis_cli_checks "$role" "$port" ;;
            ruby) run_client ruby-redis "$role" ruby scripts/lib/client-compat.rb "$port" "$role" ;;
            *) echo "client-compat.sh: unknown client $client (redis-py, redis-cli, ruby)" >&2; exit 2 ;;
        esac
    done
done

echo "client-compat: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
