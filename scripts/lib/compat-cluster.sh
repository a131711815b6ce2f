# shellcheck shell=bash disable=SC2034,SC2154 # sourced: the caller sets work, node_pid and reads follower
# A local 3-node kvd cluster on a fixed block of loopback ports, for the compatibility scripts
# (scripts/redis-suite.sh, scripts/client-compat.sh). Sourced after scripts/lib/local-cluster.sh,
# whose start_node, leader_id, client_port and kill_and_reap it uses.
#
# Why fixed ports: local-cluster.sh's free_ports takes kernel-chosen ephemeral ports, the same
# range the Swift tests draw from with their own freePorts, so a compat run beside `swift test`
# could take a port a test is about to bind. These scripts use a block below the ephemeral range
# (32768-60999), away from the 7000-7299 block of cluster.conf.example and kvd-faults and from
# the 21079-21110 range where Redis's Tcl harness listens for its test clients. A block that is
# busy (another run on this machine) moves up to the next free one.
#
# The caller sets kvd (binary), work (directory) and declares node_pid as an associative array.

# port_is_free PORT: nothing listens on 127.0.0.1:PORT right now. SO_REUSEADDR, as servers set
# it: connections of a previous run left in TIME_WAIT do not make a port busy.
port_is_free() {
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# compat_cluster_conf CLUSTER-ID BASE-PORT: writes $conf for three nodes on the first block of 7
# free consecutive ports at or above BASE-PORT (stepping by 10); sets `ports` as
# write_cluster_conf does (peer, client per node; the 7th is spare).
compat_cluster_conf() {
    local cluster=$1 base=$2 port ok id
    while :; do
        [ "$base" -lt 32700 ] || { echo "compat-cluster: no free block of 7 ports below 32700" >&2; return 1; }
        ok=1
        for ((port = base; port < base + 7; port++)); do
            port_is_free "$port" || { ok=0; break; }
        done
        [ "$ok" = 1 ] && break
        base=$((base + 10))
    done
    ports=()
    for ((port = base; port < base + 7; port++)); do ports+=("$port"); done
    {
        echo "cluster-id $cluster"
        echo "heartbeat-ms 50"
        echo "election-timeout-ms 500"
        for id in 1 2 3; do
            echo "node $id peer=127.0.0.1:${ports[$((id * 2 - 2))]} client=127.0.0.1:${ports[$((id * 2 - 1))]}"
        done
    } >"$conf"
}

# compat_start_cluster NAME CLUSTER-ID BASE-PORT: writes the configuration, starts the three
# nodes, waits up to 20 s for one leader all agree on; sets leader (id) and follower (an id that
# is not the leader).
compat_start_cluster() {
    local name=$1 deadline id
    conf="$work/cluster.conf"
    compat_cluster_conf "$2" "$3"
    mkdir -p "$work/data"
    for id in 1 2 3; do start_node "$id"; done
    deadline=$(($(now_ms) + 20000))
    until leader=$(leader_id); do
        if [ "$(now_ms)" -ge "$deadline" ]; then
            echo "$name: no leader after 20 s; node logs follow" >&2
            for id in 1 2 3; do tail -n 20 "$work/node$id.log" >&2 || true; done
            return 1
        fi
        sleep 0.1
    done
    for id in 1 2 3; do
        [ "$id" = "$leader" ] || { follower=$id; break; }
    done
}

# compat_stop_cluster: SIGTERM every node (a leader hands over first), then SIGKILL what is left
# after 5 s. For EXIT traps: never fails.
compat_stop_cluster() {
    local pid pids=() i
    for pid in "${node_pid[@]}"; do pids+=("$pid"); kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 1 ] || break
        sleep 0.1
    done
    kill_and_reap "${pids[@]}"
}
