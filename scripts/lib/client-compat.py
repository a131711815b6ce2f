#!/usr/bin/env python3
"""redis-py checks of Redis behaviour against one kvd node, for scripts/client-compat.sh.

    client-compat.py --port PORT --role leader|follower [--protocol 2|3] [--timeout SECONDS]

With no --protocol the client is made exactly as an application would, redis.Redis(port=PORT),
which in redis-py 8 speaks RESP3 (it sends HELLO 3 on connect); --protocol 2 passes protocol=2.
Each check prints one line, "PASS <client> <role>: <what>" or "FAIL <client> <role>: <what>:
<why>", and the exit status is 1 if any failed. Every socket operation has a timeout, so a
server that never answers fails a check instead of hanging it. Keys are under a prefix unique to
this run, so runs against different nodes of one cluster do not see each other's keys.
"""

import argparse
import os
import sys
import time
import uuid

import redis

failures = 0


def check(label, what, fn):
    """Runs fn(); an AssertionError or any client error fails the check with its message."""
    global failures
    try:
        fn()
        print(f"PASS {label}: {what}", flush=True)
    except AssertionError as e:
        failures += 1
        print(f"FAIL {label}: {what}: {e}", flush=True)
    except Exception as e:  # noqa: BLE001 - every client error is a failed check, named
        failures += 1
        print(f"FAIL {label}: {what}: {type(e).__name__}: {e}", flush=True)


def expect(actual, expected, what=""):
    assert actual == expected, f"{what}got {actual!r}, expected {expected!r}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--role", required=True)
    parser.add_argument("--protocol", type=int, choices=[2, 3])
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()

    options = {"host": "127.0.0.1", "port": args.port, "socket_timeout": args.timeout,
               "socket_connect_timeout": args.timeout}
    if args.protocol is not None:
        options["protocol"] = args.protocol
    proto_name = f"protocol={args.protocol}" if args.protocol is not None else "default"
    label = f"redis-py {redis.__version__} ({'default: RESP3' if args.protocol is None else proto_name}) {args.role}"
    r = redis.Redis(**options)
    other = redis.Redis(**options)  # a second connection, to change a watched key
    prefix = f"compat:{args.role}:{proto_name}:{uuid.uuid4().hex[:8]}:"

    def key(name):
        return prefix + name

    def connect():
        expect(r.ping(), True, "PING: ")
        # redis-py 8's default is RESP3: the connection it made says which protocol it speaks.
        wanted = args.protocol if args.protocol is not None else 3
        conn = r.connection_pool.get_connection()
        try:
            expect(int(conn.protocol or 2), wanted, "protocol of the connection: ")
        finally:
            r.connection_pool.release(conn)

    def set_get_delete():
        expect(r.set(key("a"), "1"), True, "SET: ")
        expect(r.get(key("a")), b"1", "GET: ")
        expect(r.exists(key("a")), 1, "EXISTS: ")
        expect(r.delete(key("a"), key("missing")), 1, "DEL: ")
        expect(r.get(key("a")), None, "GET after DEL: ")

    def expire_ttl():
        r.set(key("ttl"), "v")
        expect(r.ttl(key("ttl")), -1, "TTL without expiry: ")
        expect(r.expire(key("ttl"), 100), True, "EXPIRE: ")
        ttl = r.ttl(key("ttl"))
        assert 90 <= ttl <= 100, f"TTL after EXPIRE 100 is {ttl!r}"
        expect(r.ttl(key("no-such-key")), -2, "TTL of a missing key: ")
        expect(r.expire(key("no-such-key"), 100), False, "EXPIRE of a missing key: ")

    def incr():
        expect(r.incr(key("n")), 1, "INCR of a new key: ")
        expect(r.incrby(key("n"), 5), 6, "INCRBY 5: ")
        expect(r.decr(key("n")), 5, "DECR: ")

    def mset_mget():
        expect(r.mset({key("m1"): "x", key("m2"): "y"}), True, "MSET: ")
        expect(r.mget([key("m1"), key("m2"), key("m3")]), [b"x", b"y", None], "MGET: ")

    def getset_getdel():
        r.set(key("g"), "old")
        expect(r.getset(key("g"), "new"), b"old", "GETSET: ")
        expect(r.getdel(key("g")), b"new", "GETDEL: ")
        expect(r.get(key("g")), None, "GET after GETDEL: ")
        expect(r.getdel(key("g")), None, "GETDEL of a missing key: ")

    def set_nx_px():
        expect(r.set(key("lock"), "me", nx=True, px=600), True, "SET NX PX 600: ")
        expect(r.set(key("lock"), "you", nx=True, px=600), None, "second SET NX: ")
        pttl = r.pttl(key("lock"))
        assert 0 < pttl <= 600, f"PTTL after PX 600 is {pttl!r}"
        deadline = time.monotonic() + 5
        while r.get(key("lock")) is not None:
            assert time.monotonic() < deadline, "the key still exists 5 s after PX 600"
            time.sleep(0.1)

    def transactional_pipeline():
        pipe = r.pipeline()  # transaction=True: MULTI ... EXEC
        pipe.set(key("p"), "1").incr(key("p")).get(key("p"))
        expect(pipe.execute(), [True, 2, b"2"], "MULTI/EXEC replies: ")

    def plain_pipeline():
        pipe = r.pipeline(transaction=False)
        pipe.set(key("q"), "a").get(key("q")).delete(key("q"))
        expect(pipe.execute(), [True, b"a", 1], "pipelined replies: ")

    def scan_iter():
        keys = {f"{prefix}scan:{i}".encode() for i in range(25)}
        for k in keys:
            r.set(k, "s")
        found = set(r.scan_iter(match=f"{prefix}scan:*", count=10))
        expect(found, keys, "SCAN MATCH keys: ")

    def watch_commit():
        r.set(key("w"), "10")
        with r.pipeline() as pipe:
            pipe.watch(key("w"))
            value = int(pipe.get(key("w")))  # immediate mode while watching
            pipe.multi()
            pipe.set(key("w"), str(value + 1))
            expect(pipe.execute(), [True], "EXEC after WATCH: ")
        expect(r.get(key("w")), b"11", "GET after the transaction: ")

    def watch_conflict():
        r.set(key("wc"), "10")
        with r.pipeline() as pipe:
            pipe.watch(key("wc"))
            pipe.get(key("wc"))
            other.set(key("wc"), "changed")  # another client changes the watched key
            pipe.multi()
            pipe.set(key("wc"), "mine")
            try:
                result = pipe.execute()
            except redis.WatchError:
                pass
            else:
                raise AssertionError(f"EXEC after the watched key changed returned {result!r}, expected WatchError")
        expect(r.get(key("wc")), b"changed", "GET after the aborted transaction: ")

    checks = [
        ("connect, PING, protocol", connect),
        ("SET/GET/EXISTS/DEL", set_get_delete),
        ("EXPIRE/TTL", expire_ttl),
        ("INCR/INCRBY/DECR", incr),
        ("MSET/MGET", mset_mget),
        ("GETSET/GETDEL", getset_getdel),
        ("SET NX PX/PTTL, expiry", set_nx_px),
        ("pipeline() MULTI/EXEC", transactional_pipeline),
        ("pipeline(transaction=False)", plain_pipeline),
        ("scan_iter MATCH COUNT", scan_iter),
        ("WATCH/MULTI/EXEC", watch_commit),
        ("WATCH conflict raises WatchError", watch_conflict),
    ]
    only = os.environ.get("CLIENT_COMPAT_ONLY")  # a substring, to run some checks alone
    for what, fn in checks:
        if only and only.lower() not in what.lower():
            continue
        check(label, what, fn)
    # Best effort: leave no keys behind (a server without SCAN or DEL just keeps them).
    try:
        leftovers = [k for k in r.scan_iter(match=f"{prefix}*", count=100)]
        if leftovers:
            r.delete(*leftovers)
    except Exception:  # noqa: BLE001
        pass
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
