# Helpers for scripts that run a local 3-node kvd cluster on free loopback ports (sourced by the
# scripts/*.sh that start one: bench.sh, bench-report.sh, speed-report.sh, soak.sh, ...; some use
# only the first helpers). The caller sets: kvd (binary), conf (cluster file),
# work (directory for data and logs) and declares node_pid as an associative array; it calls
# write_cluster_conf first.

# Free TCP ports on 127.0.0.1: bind port 0 and let the kernel choose.
free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# write_cluster_conf CLUSTER-ID [SETTING-LINE...]: three nodes on free ports; sets `ports`.
write_cluster_conf() {
    local cluster=$1 id
    shift
    read -r -a ports <<<"$(free_ports 7)"
    {
        echo "cluster-id $cluster"
        echo "heartbeat-ms 50"
        echo "election-timeout-ms 500"
        for line in "$@"; do echo "$line"; done
        for id in 1 2 3; do
            echo "node $id peer=127.0.0.1:${ports[$((id * 2 - 2))]} client=127.0.0.1:${ports[$((id * 2 - 1))]}"
        done
    } >"$conf"
}

client_port() { echo "${ports[$(($1 * 2 - 1))]}"; }

start_node() {
    "$kvd" --config "$conf" --id "$1" --data-dir "$work/data/$1" >>"$work/node$1.log" 2>&1 &
    node_pid[$1]=$!
    echo "$!" >"$work/node$1.pid"
}

# The leader's id once every running node agrees on it (INFO of each node; no kvctl redirects).
# Each INFO is bounded (timeout 10): a node that accepts a connection but never answers must not
# hang the caller.
leader_id() {
    local id leader="" seen role lid
    for id in "${!node_pid[@]}"; do
        seen=$(timeout 10 redis-cli -h 127.0.0.1 -p "$(client_port "$id")" INFO 2>/dev/null | tr -d '\r') || return 1
        role=$(sed -n 's/^role://p' <<<"$seen")
        lid=$(sed -n 's/^leader_id://p' <<<"$seen")
        [ -n "$lid" ] && [ "$lid" != 0 ] || return 1
        [ -z "$leader" ] || [ "$leader" = "$lid" ] || return 1
        leader=$lid
        if [ "$id" = "$lid" ] && [ "$role" != leader ]; then return 1; fi
    done
    [ -n "$leader" ] && [ -n "${node_pid[$leader]:-}" ] && echo "$leader"
}

wait_for_leader() {
    local deadline=$(($(now_ms) + 20000)) leader
    until leader=$(leader_id); do
        [ "$(now_ms)" -lt "$deadline" ] || { echo "no leader after 20 s (logs in $work)" >&2; KEEP_WORK=1; exit 1; }
        sleep 0.05
    done
    echo "$leader"
}

info_field() { # NODE FIELD
    timeout 10 redis-cli -h 127.0.0.1 -p "$(client_port "$1")" INFO 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# kill_and_reap PID...: SIGKILL every process given and wait for each (for cleanup traps).
kill_and_reap() {
    local pid
    for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

# release_binaries SCRIPT: builds kvd and kvctl in release mode unless KVD_SKIP_BUILD is set, then
# sets kvd and kvctl to absolute paths of the binaries in KVD_BIN_DIR (default .build/release).
release_binaries() {
    local bin_dir=${KVD_BIN_DIR:-.build/release}
    if [ -z "${KVD_SKIP_BUILD:-}" ]; then
        echo "$1: building kvd and kvctl (release)"
        swift build -c release --product kvd >/dev/null
        swift build -c release --product kvctl >/dev/null
    fi
    kvd="$(cd "$bin_dir" && pwd)/kvd"
    kvctl="$(cd "$bin_dir" && pwd)/kvctl"
}

# start_redis SCRIPT PORT: starts redis-server on 127.0.0.1:PORT with appendonly yes and
# appendfsync always (every write fsynced, the peer kvd is compared with), its files in $work;
# sets redis_pid and waits up to 10 s for it to answer.
start_redis() {
    redis-server --port "$2" --bind 127.0.0.1 --appendonly yes --appendfsync always --save '' \
        --dir "$work" --logfile "$work/redis.log" --daemonize no &
    redis_pid=$!
    local deadline=$(($(now_ms) + 10000))
    until redis-cli -h 127.0.0.1 -p "$2" PING >/dev/null 2>&1; do
        [ "$(now_ms)" -lt "$deadline" ] || { echo "$1: redis-server did not start" >&2; exit 1; }
        sleep 0.05
    done
}
