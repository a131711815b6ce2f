import KVStore
import RaftCore
import Testing

/// Redis's string and key commands beyond SET/DEL/INCR, with Redis's replies, and transactions
/// applied as one entry.
@Suite struct KVStringTests {
    func set(_ kv: KVFixture, _ request: SetRequest) throws -> KVResult { try kv.apply(.set(request)) }

    @Test func setOptionsFollowRedis() throws {
        let kv = try KVFixture()
        let key = bytes("k")
        #expect(try set(kv, SetRequest(key: key, value: bytes("a"), returnPrevious: true)) == .value(nil))
        #expect(try set(kv, SetRequest(key: key, value: bytes("b"), returnPrevious: true)) == .value(bytes("a")))
        // NX with GET: not set, but the old value is still returned.
        #expect(try set(kv, SetRequest(key: key, value: bytes("c"), condition: .ifAbsent, returnPrevious: true)) == .value(bytes("b")))
        #expect(try set(kv, SetRequest(key: key, value: bytes("c"), condition: .value(.equal(bytes("x"))))) == .notApplied)
        #expect(try set(kv, SetRequest(key: key, value: bytes("c"), condition: .value(.equal(bytes("b"))))) == .ok)
        #expect(try set(kv, SetRequest(key: key, value: bytes("d"), condition: .value(.notEqual(bytes("c"))))) == .notApplied)
        #expect(try set(kv, SetRequest(key: bytes("new"), value: bytes("d"), condition: .value(.notEqual(bytes("c"))))) == .ok)
        #expect(try kv.value("k") == "c")
        // A deadline already past: set and gone at once.
        #expect(try set(kv, SetRequest(key: key, value: bytes("e"), expiry: .at(unixMillis: 5))) == .ok)
        #expect(try kv.value("k") == nil)
        #expect(kv.machine.keyCount == 1)
    }

    @Test func compareAndDeleteOnlyTouchesAMatchingValue() throws {
        let kv = try KVFixture()
        _ = try kv.put("lock", "mine")
        #expect(try kv.apply(.deleteIf(key: bytes("lock"), condition: .equal(bytes("theirs")), fence: nil)) == .integer(0))
        #expect(try kv.apply(.deleteIf(key: bytes("lock"), condition: .notEqual(bytes("mine")), fence: nil)) == .integer(0))
        #expect(try kv.apply(.deleteIf(key: bytes("lock"), condition: .equal(bytes("mine")), fence: nil)) == .integer(1))
        #expect(try kv.apply(.deleteIf(key: bytes("lock"), condition: .equal(bytes("mine")), fence: nil)) == .integer(0))
    }

    @Test func appendSetRangeAndGetDel() throws {
        let kv = try KVFixture()
        #expect(try kv.apply(.append(key: bytes("s"), value: bytes("ab"), fence: nil)) == .integer(2))
        #expect(try kv.apply(.append(key: bytes("s"), value: bytes("cd"), fence: nil)) == .integer(4))
        #expect(try kv.apply(.setRange(key: bytes("s"), offset: 6, value: bytes("Z"), fence: nil)) == .integer(7))
        #expect(try kv.machine.get(bytes("s"))?.value == bytes("abcd") + [0, 0] + bytes("Z"))
        #expect(try kv.apply(.setRange(key: bytes("none"), offset: 3, value: [], fence: nil)) == .integer(0))
        #expect(try kv.value("none") == nil)
        #expect(try kv.apply(.setRange(key: bytes("s"), offset: 1 << 40, value: bytes("x"), fence: nil)) != .integer(0))
        #expect(try kv.apply(.getDelete(key: bytes("s"))) == .value(bytes("abcd") + [0, 0] + bytes("Z")))
        #expect(try kv.apply(.getDelete(key: bytes("s"))) == .value(nil))
    }

    @Test func incrementFloatFollowsRedis() throws {
        let kv = try KVFixture()
        #expect(try kv.apply(.incrementFloat(key: bytes("f"), delta: 10.5, fence: nil)) == .value(bytes("10.5")))
        #expect(try kv.apply(.incrementFloat(key: bytes("f"), delta: 0.5, fence: nil)) == .value(bytes("11")))
        _ = try kv.put("s", "1 ")
        #expect(try kv.apply(.incrementFloat(key: bytes("s"), delta: 1, fence: nil)) == .error(.invalid("value is not a valid float")))
        _ = try kv.put("hex", "0x10")
        #expect(try kv.apply(.incrementFloat(key: bytes("hex"), delta: 1, fence: nil)) == .error(.invalid("value is not a valid float")))
        _ = try kv.put("big", "1.7e308")
        #expect(try kv.apply(.incrementFloat(key: bytes("big"), delta: 1.7e308, fence: nil))
            == .error(.invalid("increment would produce NaN or Infinity")))
    }

    @Test func renameCopyAndMultiSetKeepTheKeyCount() throws {
        let kv = try KVFixture()
        #expect(try kv.apply(.rename(from: bytes("a"), to: bytes("b"), onlyIfAbsent: false)) == .error(.invalid("no such key")))
        _ = try kv.apply(.set(SetRequest(key: bytes("a"), value: bytes("1"), expiry: .after(millis: 900))))
        _ = try kv.put("c", "3")
        #expect(try kv.apply(.rename(from: bytes("a"), to: bytes("c"), onlyIfAbsent: true)) == .integer(0))
        #expect(try kv.apply(.rename(from: bytes("a"), to: bytes("c"), onlyIfAbsent: false)) == .ok)
        #expect(try kv.value("a") == nil)
        #expect(try kv.machine.read(.ttl(bytes("c"), .millis), nowMillis: kv.nowMillis) == .integer(900))
        #expect(kv.machine.keyCount == 1)
        #expect(try kv.apply(.copy(from: bytes("c"), to: bytes("d"), replace: false)) == .integer(1))
        #expect(try kv.apply(.copy(from: bytes("c"), to: bytes("d"), replace: false)) == .integer(0))
        #expect(try kv.apply(.copy(from: bytes("c"), to: bytes("c"), replace: true)) == .error(.invalid("source and destination objects are the same")))
        #expect(kv.machine.keyCount == 2)
        #expect(try kv.apply(.multiSet(pairs: [bytes("d"), bytes("x"), bytes("e"), bytes("y")], onlyIfNoneExist: true)) == .integer(0))
        #expect(try kv.value("e") == nil)
        #expect(try kv.apply(.multiSet(pairs: [bytes("d"), bytes("x"), bytes("e"), bytes("y")], onlyIfNoneExist: false)) == .ok)
        #expect(kv.machine.keyCount == 3)
        #expect(try kv.machine.read(.dbsize, nowMillis: kv.nowMillis) == .integer(3))
    }

    @Test func flushDeletesKeysButKeepsLocksAndFences() throws {
        let kv = try KVFixture()
        let lease = try kv.grantLease()
        _ = try kv.apply(.lockAcquire(name: bytes("L"), leaseID: lease, wait: false))
        _ = try kv.apply(.fence(name: bytes("F"), token: 7))
        _ = try kv.put("a", "1")
        _ = try kv.put("b", "2", lease: lease)
        #expect(try kv.apply(.flush) == .ok)
        #expect(kv.machine.keyCount == 0)
        #expect(try kv.value("a") == nil)
        #expect(try kv.machine.lockOwner(bytes("L"))?.leaseID == lease)
        #expect(try kv.apply(.fence(name: bytes("F"), token: 6)) != .fenceAccepted(token: 6))
        var limits = KVLimits()
        limits.flushKeysMax = 1
        let small = try KVFixture(limits: limits)
        _ = try small.put("a", "1")
        _ = try small.put("b", "1")
        #expect(try small.apply(.flush) != .ok)
        #expect(small.machine.keyCount == 2)
    }

    @Test func aTransactionAppliesInOrderOrNotAtAllWhenAWatchedKeyChanged() throws {
        let kv = try KVFixture()
        _ = try kv.put("w", "1")
        let version = try kv.machine.versions([bytes("w"), bytes("absent")])
        #expect(version == [1, 0])
        let operations: [KVOperation] = [
            .put(key: bytes("x"), value: bytes("a"), condition: .always, lease: nil, fence: nil),
            .increment(key: bytes("x"), delta: 1, fence: nil),  // fails; the others still apply
            .read(.get(bytes("x"))),
            .append(key: bytes("x"), value: bytes("b"), fence: nil),
            .read(.mget([bytes("x"), bytes("none")])),
        ]
        let watches = [WatchedKey(key: bytes("w"), modIndex: 1), WatchedKey(key: bytes("absent"), modIndex: 0)]
        let result = try kv.apply(.transaction(operations: operations, watches: watches))
        #expect(
            result
                == .transaction([.ok, .error(.notInteger), .value(bytes("a")), .integer(2), .values([bytes("ab"), nil])]))
        // The watched key changes: the next EXEC with the old version applies nothing.
        _ = try kv.put("w", "2")
        #expect(try kv.apply(.transaction(operations: [.flush], watches: watches)) == .transaction(nil))
        #expect(try kv.value("x") == "ab")
        // A watched key that expired counts as changed.
        _ = try kv.apply(.set(SetRequest(key: bytes("t"), value: bytes("v"), expiry: .after(millis: 10))))
        let watchT = [WatchedKey(key: bytes("t"), modIndex: try kv.machine.versions([bytes("t")])[0])]
        kv.nowMillis += 10
        #expect(try kv.apply(.transaction(operations: [.flush], watches: watchT)) == .transaction(nil))
        // Commands that cannot be part of a transaction are refused inside it, alone.
        #expect(try kv.apply(.transaction(operations: [.leaseGrant(ttlMillis: 5_000)], watches: []))
            == .transaction([.error(.invalid("this command cannot run inside MULTI"))]))
    }

    @Test func aTransactionInASessionAppliesOnceAndARetryGetsTheKeptReplies() throws {
        let kv = try KVFixture()
        guard case .sessionRegistered(let client) = try kv.apply(.sessionRegister) else {
            Issue.record("no session")
            return
        }
        let stamp = SessionStamp(clientID: client, sequence: 1)
        let transaction = KVOperation.transaction(
            operations: [.increment(key: bytes("n"), delta: 1, fence: nil), .read(.get(bytes("n")))], watches: [])
        let first = try kv.apply(transaction, session: stamp)
        #expect(first == .transaction([.integer(1), .value(bytes("1"))]))
        #expect(try kv.apply(transaction, session: stamp) == first)
        #expect(try kv.value("n") == "1")
    }

    @Test func newOperationsAndResultsRoundTripThroughTheCodec() throws {
        let operations: [KVOperation] = [
            .set(SetRequest(key: bytes("k"), value: bytes("v"), condition: .value(.notEqual(bytes("x"))), expiry: .at(unixMillis: 9),
                returnPrevious: true, fence: FenceCondition(lock: bytes("L"), token: 3))),
            .expire(key: bytes("k"), at: .after(millis: -5), condition: .ifLater), .persist(key: bytes("k")),
            .getEx(key: bytes("k"), change: .expire(.keep)), .getDelete(key: bytes("k")),
            .deleteIf(key: bytes("k"), condition: .equal(bytes("v")), fence: nil),
            .append(key: bytes("k"), value: bytes("v"), fence: nil), .setRange(key: bytes("k"), offset: 4, value: bytes("v"), fence: nil),
            .incrementFloat(key: bytes("k"), delta: -0.25, fence: nil), .rename(from: bytes("a"), to: bytes("b"), onlyIfAbsent: true),
            .copy(from: bytes("a"), to: bytes("b"), replace: true), .multiSet(pairs: [bytes("a"), bytes("b")], onlyIfNoneExist: true),
            .flush, .expireKeys([bytes("a"), bytes("b")]), .read(.ttl(bytes("k"), .unixSeconds)), .read(.dbsize),
            .transaction(operations: [.read(.getRange(bytes("k"), start: -1, end: 3)), .flush], watches: [WatchedKey(key: bytes("w"), modIndex: 4)]),
        ]
        for operation in operations {
            let command = KVCommand(session: SessionStamp(clientID: 1, sequence: 2), timestampMillis: 3, operation: operation)
            #expect(try KVCommand(decoding: command.encoded()) == command)
        }
        let results: [KVResult] = [
            .value(nil), .value(bytes("v")), .values([nil, bytes("x")]), .status("string"), .transaction(nil),
            .transaction([.ok, .value(bytes("v")), .error(.invalid("no such key"))]),
        ]
        for result in results { #expect(try KVResult(decoding: result.encoded()) == result) }
    }

    @Test("MGET, LIST and a transaction's reads are refused past replyBytesMax, before the reply is built")
    func replyBytesLimit() throws {
        var limits = KVLimits()
        limits.replyBytesMax = 100
        let kv = try KVFixture(limits: limits)
        _ = try kv.put("big", String(repeating: "v", count: 40))
        let refused = KVResult.error(KVStateMachine.replyTooLarge("MGET", 100))
        #expect(try kv.machine.read(.mget([bytes("big"), bytes("big")]), nowMillis: 0) == .values([bytes(String(repeating: "v", count: 40))] + [bytes(String(repeating: "v", count: 40))]))
        #expect(try kv.machine.read(.mget(Array(repeating: bytes("big"), count: 3)), nowMillis: 0) == refused)
        #expect(try kv.machine.read(.mget(Array(repeating: bytes("big"), count: 100_000)), nowMillis: 0) == refused)

        _ = try kv.put("big2", String(repeating: "w", count: 40))
        #expect(try kv.machine.listReply(prefix: bytes("big"), limit: 10)?.count == 2, "3 + 40 + 4 + 40 bytes fit")
        _ = try kv.put("big3", String(repeating: "x", count: 40))
        #expect(try kv.machine.listReply(prefix: bytes("big"), limit: 10) == nil)
        #expect(try kv.machine.list(prefix: bytes("big"), limit: 10).count == 3, "internal listings are not limited")

        let reads: [KVOperation] = [.read(.get(bytes("big"))), .read(.get(bytes("big2"))), .read(.get(bytes("big3")))]
        let result = try kv.apply(.transaction(operations: reads, watches: []))
        #expect(
            result
                == .transaction([
                    .value(bytes(String(repeating: "v", count: 40))), .value(bytes(String(repeating: "w", count: 40))),
                    .error(KVStateMachine.replyTooLarge("EXEC", 100)),
                ]))
    }
}
