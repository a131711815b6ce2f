#!/usr/bin/env bash
# Starts, stops and reports a local kvd cluster in the background. Each node's log and data live
# under one folder: run/<config name>/{logs,data,pids}.
#
#   scripts/cluster.sh start [CONF]        install what is missing, build, start every node
#   scripts/cluster.sh stop [CONF]         SIGTERM every node: followers first, the leader last
#   scripts/cluster.sh status [CONF]       kvctl status for the cluster
#   scripts/cluster.sh kill ID|leader [CONF]  kill -9 one node, or the current leader (a failover)
#   scripts/cluster.sh start-node ID [CONF]  (re)start one node
#   scripts/cluster.sh clean [CONF]        stop, then delete the run folder
#
# CONF defaults to cluster.conf.example (3 nodes); cluster5.conf.example has 5. A node that exits
# while `start` waits for a leader fails the start at once, with the node's own error.

set -euo pipefail
cd "$(dirname "$0")/.."

command=${1:-}
case "$command" in
    kill | start-node) node_id=${2:?usage: scripts/cluster.sh $command ID [CONF]}; conf=${3:-cluster.conf.example} ;;
    start | stop | status | clean) conf=${2:-cluster.conf.example} ;;
    *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 2 ;;
esac
[ -f "$conf" ] || { echo "cluster.sh: no configuration file '$conf'" >&2; exit 1; }

name=$(basename "$conf")
name=${name%.example}
name=${name%.conf}
run_dir=${KVD_RUN_DIR:-run/$name}
bin_dir=${KVD_BIN_DIR:-.build/release}
node_ids=$(awk '$1 == "node" { print $2 }' "$conf")

build() {
    scripts/install-deps.sh
    if [ -z "${KVD_SKIP_BUILD:-}" ]; then
        echo "cluster.sh: building kvd and kvctl (release; the first build takes a few minutes)"
        swift build -c release --product kvd >/dev/null
        swift build -c release --product kvctl >/dev/null
    fi
}

# Whether process $1 runs: a zombie (exited, not yet reaped by whoever adopted it) does not.
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

is_running() { [ -f "$run_dir/pids/$1" ] && alive "$(cat "$run_dir/pids/$1")"; }

start_node() {
    local id=$1
    mkdir -p "$run_dir/logs" "$run_dir/data" "$run_dir/pids"
    if is_running "$id"; then echo "node $id is already running (pid $(cat "$run_dir/pids/$id"))"; return; fi
    nohup "$bin_dir/kvd" --config "$conf" --id "$id" --data-dir "$run_dir/data/$id" >>"$run_dir/logs/$id.log" 2>&1 &
    echo $! >"$run_dir/pids/$id"
    echo "started node $id (pid $!, log $run_dir/logs/$id.log)"
}

stop_node() {
    local id=$1
    is_running "$id" || { rm -f "$run_dir/pids/$id"; return; }
    local pid
    pid=$(cat "$run_dir/pids/$id")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$run_dir/pids/$id"
    echo "stopped node $id"
}

# The id of the node that leads, as `kvctl status` reports it; nothing if none answers.
leader_id() {
    "$bin_dir/kvctl" --config "$conf" status --timeout 2 2>/dev/null | awk '$3 == "leader" { print $1; exit }'
}

# Waits up to 10 s for a leader among the nodes just started. A node that exits meanwhile fails
# the start at once with the last line of its log (kvd's own one-line error), and a leader is
# only believed if it is one of the nodes this script started (not another cluster on the ports).
wait_for_leader() {
    local id leader
    for _ in $(seq 1 100); do
        for id in $node_ids; do
            if ! is_running "$id"; then
                echo "cluster.sh: node $id exited: $(tail -n 1 "$run_dir/logs/$id.log" 2>/dev/null)" >&2
                return 1
            fi
        done
        leader=$(leader_id)
        if [ -n "$leader" ] && [ -f "$run_dir/pids/$leader" ]; then return 0; fi
        sleep 0.1
    done
    echo "cluster.sh: no leader after 10 s; see the logs in $run_dir/logs" >&2
    return 1
}

case "$command" in
    start)
        build
        for id in $node_ids; do start_node "$id"; done
        if ! wait_for_leader; then
            for id in $node_ids; do stop_node "$id" >/dev/null; done
            exit 1
        fi
        "$bin_dir/kvctl" --config "$conf" status
        echo
        echo "kvctl is at $bin_dir/kvctl. To use it:  export PATH=\"$PWD/$bin_dir:\$PATH\""
        [ "$conf" = cluster.conf.example ] || echo "and pass --config $conf (or set KVCTL_ENDPOINTS)"
        echo "Logs and data: $run_dir/. Stop the cluster with:  scripts/cluster.sh stop $conf"
        ;;
    stop)
        # Followers first, the leader last: stopping a leader hands leadership over, and handing
        # it to a node about to stop would only make the next stop wait for another election.
        leader=$(leader_id || true)
        for id in $node_ids; do [ "$id" = "$leader" ] || stop_node "$id"; done
        [ -z "$leader" ] || stop_node "$leader"
        ;;
    status) "$bin_dir/kvctl" --config "$conf" status ;;
    kill)
        if [ "$node_id" = leader ]; then
            node_id=$(leader_id)
            [ -n "$node_id" ] || { echo "cluster.sh: no node reports a leader" >&2; exit 1; }
            echo "the leader is node $node_id"
        fi
        is_running "$node_id" || { echo "node $node_id is not running" >&2; exit 1; }
        kill -KILL "$(cat "$run_dir/pids/$node_id")"
        rm -f "$run_dir/pids/$node_id"
        echo "killed node $node_id with SIGKILL"
        ;;
    start-node) start_node "$node_id" ;;
    clean)
        for id in $node_ids; do stop_node "$id"; done
        rm -rf "$run_dir"
        echo "removed $run_dir"
        ;;
esac
