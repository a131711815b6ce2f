#!/usr/bin/env python3
"""One failover trial against a local kvd cluster, timed from inside one process (used by
scripts/failover-bench.sh).

It keeps a RESP connection open to every node's client port and writes SET in a tight loop on
each of them at once (each connection first sends CLIENT REDIRECT ON, so a follower answers
-NOTLEADER at once instead of forwarding; only the leader acknowledges). Once
the current leader has acknowledged a write, it sends the signal to the leader's process and
takes that instant as zero. From then on it records:

  leader_ms  the first time a surviving node answers INFO with role:leader in a later term
             (INFO polled on every survivor every few milliseconds, from a thread of its own);
  write_ms   the first +OK from a node other than the one signalled: the first write the new
             leader acknowledged (it replies only after the entry committed).

With --signal STOP it sends SIGCONT once both are known (or at the deadline). Writes that get no
reply within --request-timeout-ms are abandoned and their connection reopened (this only happens
on the stopped node). Output: one line of key=value pairs on stdout.
"""
import argparse
import os
import selectors
import signal
import socket
import sys
import threading
import time


def now_ms():
    return time.monotonic() * 1000.0


def resp(*parts):
    out = b"*%d\r\n" % len(parts)
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return out


def info(port, timeout):
    """The INFO fields of the node at port, or {} if it does not answer in time."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(resp("INFO"))
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                if data.startswith(b"$"):
                    header, _, rest = data.partition(b"\r\n")
                    if len(rest) >= int(header[1:]) + 2:
                        break
                elif b"\r\n" in data:
                    break
    except OSError:
        return {}
    fields = {}
    for line in data.decode(errors="replace").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields[name] = value
    return fields


class Conn:
    def __init__(self, node, port):
        self.node, self.port = node, port
        self.sock = None
        self.sent_at = None      # when the outstanding request was sent
        self.buffer = b""
        self.next_send = 0.0     # earliest time for the next request


class Writer:
    def __init__(self, ports, prefix, request_timeout_ms):
        self.conns = [Conn(i + 1, p) for i, p in enumerate(ports)]
        self.prefix = prefix
        self.request_timeout_ms = request_timeout_ms
        self.selector = selectors.DefaultSelector()
        self.seq = 0
        self.acked = 0
        self.errors = 0

    def close(self, conn):
        if conn.sock is not None:
            try:
                self.selector.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
            conn.sock.close()
        conn.sock, conn.sent_at, conn.buffer = None, None, b""

    def send(self, conn, t):
        if conn.sock is None:
            try:
                sock = socket.create_connection(("127.0.0.1", conn.port), timeout=self.request_timeout_ms / 1000)
            except OSError:
                conn.next_send = t + 5
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Redirects, not forwarding: a write acknowledged by a follower after the signal could
            # have been committed by the old leader before it, and would not time the new one.
            try:
                sock.sendall(resp("CLIENT", "REDIRECT", "ON"))
                answer = b""
                while not answer.endswith(b"\r\n"):
                    chunk = sock.recv(256)
                    if not chunk:
                        raise OSError("closed while asking for redirects")
                    answer += chunk
            except OSError:
                sock.close()
                conn.next_send = t + 5
                return
            sock.setblocking(False)
            conn.sock = sock
            self.selector.register(sock, selectors.EVENT_READ, conn)
        self.seq += 1
        try:
            conn.sock.sendall(resp("SET", "%s:%d" % (self.prefix, self.seq), "v%d" % self.seq))
        except OSError:
            self.close(conn)
            conn.next_send = t + 5
            return
        conn.sent_at = t

    def step(self, budget_ms):
        """Sends and receives for up to budget_ms; returns the nodes that acknowledged a write."""
        acks = []
        t = now_ms()
        for conn in self.conns:
            if conn.sent_at is None and t >= conn.next_send:
                self.send(conn, t)
            elif conn.sent_at is not None and t - conn.sent_at > self.request_timeout_ms:
                self.close(conn)
                self.errors += 1
                conn.next_send = t
        if self.selector.get_map():
            events = self.selector.select(timeout=budget_ms / 1000)
        else:
            time.sleep(budget_ms / 1000)
            events = []
        for key, _ in events:
            conn = key.data
            try:
                chunk = conn.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            t = now_ms()
            if not chunk:
                self.close(conn)
                self.errors += 1
                conn.next_send = t + 5
                continue
            conn.buffer += chunk
            while b"\r\n" in conn.buffer:
                line, _, conn.buffer = conn.buffer.partition(b"\r\n")
                conn.sent_at = None
                if line.startswith(b"+OK"):
                    self.acked += 1
                    acks.append((conn.node, t))
                    conn.next_send = t
                else:
                    self.errors += 1
                    conn.next_send = t + 2   # a follower's -NOTLEADER: ask again shortly
        return acks


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", required=True, help="client ports of nodes 1, 2, 3, ... comma-separated")
    parser.add_argument("--leader", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--term", type=int, required=True)
    parser.add_argument("--signal", choices=["KILL", "STOP"], default="KILL")
    parser.add_argument("--prefix", default="failover")
    parser.add_argument("--request-timeout-ms", type=float, default=100)
    parser.add_argument("--poll-ms", type=float, default=5)
    parser.add_argument("--deadline-ms", type=float, default=30000)
    args = parser.parse_args()
    ports = [int(p) for p in args.ports.split(",")]
    survivors = [(i + 1, p) for i, p in enumerate(ports) if i + 1 != args.leader]
    writer = Writer(ports, args.prefix, args.request_timeout_ms)

    # Warm up: the load runs and the leader acknowledged a write before the signal.
    warm_deadline = now_ms() + 5000
    while not any(node == args.leader for node, _ in writer.step(5)):
        if now_ms() > warm_deadline:
            print("error=leader-%d-acknowledged-no-write-before-the-signal" % args.leader)
            return 1

    result = {"leader_ms": None, "new_leader": None, "new_term": None}
    stop_polling = threading.Event()

    def poll(t0):
        while not stop_polling.is_set():
            for node, port in survivors:
                fields = info(port, 0.2)
                try:
                    term = int(fields.get("term", "0"))
                except ValueError:
                    term = 0
                if fields.get("role") == "leader" and term > args.term:
                    result.update(leader_ms=now_ms() - t0, new_leader=node, new_term=term)
                    return
            time.sleep(args.poll_ms / 1000)

    sig = signal.SIGKILL if args.signal == "KILL" else signal.SIGSTOP
    t0 = now_ms()
    os.kill(args.pid, sig)
    acked_before = writer.acked
    poller = threading.Thread(target=poll, args=(t0,), daemon=True)
    poller.start()
    write_ms, write_node = None, None
    while now_ms() - t0 < args.deadline_ms:
        for node, t in writer.step(2):
            if node != args.leader and write_ms is None:
                write_ms, write_node = t - t0, node
        if write_ms is not None and result["leader_ms"] is not None:
            break
    stop_polling.set()
    poller.join(timeout=1)
    if sig == signal.SIGSTOP:
        os.kill(args.pid, signal.SIGCONT)

    def fmt(v):
        return "none" if v is None else ("%.1f" % v if isinstance(v, float) else str(v))

    print(" ".join([
        "leader_ms=%s" % fmt(result["leader_ms"]), "write_ms=%s" % fmt(write_ms),
        "new_leader=%s" % fmt(result["new_leader"]), "new_term=%s" % fmt(result["new_term"]),
        "write_node=%s" % fmt(write_node), "acked_before=%d" % acked_before,
        "acked=%d" % writer.acked, "errors=%d" % writer.errors,
    ]))
    return 0 if write_ms is not None and result["leader_ms"] is not None else 2


if __name__ == "__main__":
    sys.exit(main())
