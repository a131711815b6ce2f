#!/usr/bin/env python3
"""Acknowledged writes against a local kvd cluster, and their check (used by
scripts/disk-faults.sh).

  acked-writes.py write --ports P1,P2,P3 --log FILE --prefix P [--workers 4] [--value-bytes 100]
                        [--stop-file F] [--seconds S]
      SETs distinct keys (P:worker:seq) with values that carry a checksum, from --workers
      connections, each following -NOTLEADER to the leader and trying every node when it has no
      hint. Every write acknowledged with +OK is appended to FILE as "key<TAB>value-digest<TAB>
      length" (flushed at once); a write with any other outcome is left out (it may or may not
      have taken effect, which the check does not need). Stops when the stop file appears or after
      S seconds; prints one line of counts.

  acked-writes.py check --ports P1,P2,P3 --log FILE [--node N --readonly]
      GETs every acknowledged key (linearizable GET through the leader, or with --node N
      --readonly a local read on node N after READONLY) and compares it with what was
      acknowledged. Prints the counts and up to 10 mismatches; exits 1 on any missing or
      different value, 2 if it cannot get answers.
"""
import argparse
import hashlib
import os
import socket
import sys
import threading
import time


def encode(*parts):
    out = b"*%d\r\n" % len(parts)
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return out


class Conn:
    """One blocking RESP connection with a reply parser."""

    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.buffer = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def _exact(self, n):
        while len(self.buffer) < n + 2:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n + 2:]
        return data

    def reply(self):
        """("ok", text) | ("err", text) | ("bulk", bytes or None) | ("int", n) | ("array", list)"""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return ("ok", rest.decode(errors="replace"))
        if kind == b"-":
            return ("err", rest.decode(errors="replace"))
        if kind == b":":
            return ("int", int(rest))
        if kind == b"$":
            n = int(rest)
            return ("bulk", None if n < 0 else self._exact(n))
        if kind == b"*":
            return ("array", [self.reply() for _ in range(max(int(rest), 0))])
        raise ConnectionError("bad reply %r" % line[:80])

    def call(self, *parts):
        self.sock.sendall(encode(*parts))
        return self.reply()


def value_for(key, size):
    """A value whose content is derived from the key, so a wrong or torn value is evident."""
    seed = hashlib.sha256(key.encode()).hexdigest().encode()
    return (seed * (size // len(seed) + 1))[:size]


def digest(data):
    return hashlib.sha256(data).hexdigest()[:16]


class Router:
    """Finds the leader: follows -NOTLEADER hints, else tries the nodes in turn."""

    def __init__(self, ports, timeout):
        self.ports, self.timeout = ports, timeout
        self.index = 0
        self.conn = None

    def get(self):
        if self.conn is None:
            port = self.ports[self.index % len(self.ports)]
            self.conn = Conn(port, self.timeout)
        return self.conn

    def drop(self, hint=None):
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        if hint is not None and hint in self.ports:
            self.index = self.ports.index(hint)
        else:
            self.index += 1

    def hint(self, error):
        # NOTLEADER <id> <host:port> | NOTLEADER unknown unknown
        parts = error.split()
        if len(parts) >= 3 and ":" in parts[2]:
            try:
                return int(parts[2].rsplit(":", 1)[1])
            except ValueError:
                return None
        return None


def write(args):
    ports = [int(p) for p in args.ports.split(",")]
    lock = threading.Lock()
    log = open(args.log, "a", buffering=1)
    counts = {"acked": 0, "failed": 0, "indeterminate": 0}
    deadline = time.monotonic() + args.seconds if args.seconds else None
    errors_seen = {}

    def stopping():
        return (args.stop_file and os.path.exists(args.stop_file)) or (deadline and time.monotonic() > deadline)

    def worker(number):
        router = Router(ports, args.timeout)
        router.index = number
        seq = 0
        while not stopping():
            seq += 1
            key = "%s:%d:%d" % (args.prefix, number, seq)
            value = value_for(key, args.value_bytes)
            try:
                kind, text = router.get().call("SET", key, value)
            except OSError:
                router.drop()
                with lock:
                    counts["indeterminate"] += 1
                time.sleep(0.02)
                continue
            if kind == "ok":
                with lock:
                    counts["acked"] += 1
                    log.write("%s\t%s\t%d\n" % (key, digest(value), len(value)))
                continue
            code = text.split(" ", 1)[0]
            with lock:
                counts["failed" if code in ("NOTLEADER", "ERR", "STALE") else "indeterminate"] += 1
                errors_seen[code] = errors_seen.get(code, 0) + 1
            if code == "NOTLEADER":
                router.drop(router.hint(text))
                time.sleep(0.01 if router.hint(text) else 0.05)
            else:
                time.sleep(0.05)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    print("acked=%d failed=%d indeterminate=%d errors=%s" % (
        counts["acked"], counts["failed"], counts["indeterminate"],
        ",".join("%s:%d" % kv for kv in sorted(errors_seen.items())) or "none"))
    return 0


def check(args):
    ports = [int(p) for p in args.ports.split(",")]
    acked = []
    with open(args.log) as f:
        for line in f:
            key, want, length = line.rstrip("\n").split("\t")
            acked.append((key, want, int(length)))
    missing, wrong, examples = 0, 0, []
    batch = 200
    if args.readonly:
        conn = Conn(ports[args.node - 1], args.timeout)
        kind, text = conn.call("READONLY")
        if kind != "ok":
            print("check: READONLY on node %d: %s" % (args.node, text))
            return 2
        router = None
    else:
        router = Router(ports, args.timeout)
    i = 0
    attempts = 0
    while i < len(acked):
        chunk = acked[i:i + batch]
        try:
            c = conn if args.readonly else router.get()
            c.sock.sendall(b"".join(encode("GET", key) for key, _, _ in chunk))
            replies = [c.reply() for _ in chunk]
        except OSError as error:
            attempts += 1
            if attempts > 50:
                print("check: no answers (%s)" % error)
                return 2
            if router:
                router.drop()
            time.sleep(0.1)
            continue
        redirect = next((text for kind, text in replies if kind == "err" and text.startswith("NOTLEADER")), None)
        if redirect is not None:
            attempts += 1
            if attempts > 50:
                print("check: no leader answered (%s)" % redirect)
                return 2
            router.drop(router.hint(redirect))
            time.sleep(0.05)
            continue
        for (key, want, length), (kind, data) in zip(chunk, replies):
            if kind == "bulk" and data is None:
                missing += 1
                if len(examples) < 10:
                    examples.append("%s: missing (acknowledged %s, %d bytes)" % (key, want, length))
            elif kind != "bulk" or digest(data) != want or len(data) != length:
                wrong += 1
                if len(examples) < 10:
                    shown = data[:40] if kind == "bulk" else data
                    examples.append("%s: got %s %r, acknowledged %s (%d bytes)" % (key, kind, shown, want, length))
        i += len(chunk)
    where = ("node %d (READONLY local reads)" % args.node) if args.readonly else "the leader (linearizable GET)"
    print("checked=%d missing=%d wrong=%d via %s" % (len(acked), missing, wrong, where))
    for example in examples:
        print("  " + example)
    return 1 if missing or wrong else 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    w = sub.add_parser("write")
    w.add_argument("--ports", required=True)
    w.add_argument("--log", required=True)
    w.add_argument("--prefix", required=True)
    w.add_argument("--workers", type=int, default=4)
    w.add_argument("--value-bytes", type=int, default=100)
    w.add_argument("--stop-file")
    w.add_argument("--seconds", type=float)
    w.add_argument("--timeout", type=float, default=2.0)
    c = sub.add_parser("check")
    c.add_argument("--ports", required=True)
    c.add_argument("--log", required=True)
    c.add_argument("--node", type=int)
    c.add_argument("--readonly", action="store_true")
    c.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    if args.mode == "write":
        return write(args)
    if args.readonly and not args.node:
        parser.error("--readonly needs --node")
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
