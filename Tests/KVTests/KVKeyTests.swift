import KVStore
import RaftCore
import Testing

/// Keys behave as in Redis (SET NX/XX, DEL, INCRBY) plus CAS and prefix listing, and each key
/// remembers the indexes that created and last modified it.
@Suite struct KVKeyTests {
    @Test func putThenGetRemembersCreateAndModifyIndex() throws {
        let kv = try KVFixture()
        #expect(try kv.put("a", "1") == .ok)
        #expect(try kv.put("a", "2") == .ok)
        let record = try #require(try kv.machine.get(bytes("a")))
        #expect(record.value == bytes("2"))
        #expect(record.createIndex == 1)
        #expect(record.modIndex == 2)
        #expect(kv.machine.appliedIndex == LogIndex(2))
    }

    @Test func setConditionsFollowRedis() throws {
        let kv = try KVFixture()
        #expect(try kv.apply(.put(key: bytes("k"), value: bytes("x"), condition: .ifPresent, lease: nil, fence: nil)) == .notApplied)
        #expect(try kv.value("k") == nil)
        #expect(try kv.apply(.put(key: bytes("k"), value: bytes("x"), condition: .ifAbsent, lease: nil, fence: nil)) == .ok)
        #expect(try kv.apply(.put(key: bytes("k"), value: bytes("y"), condition: .ifAbsent, lease: nil, fence: nil)) == .notApplied)
        #expect(try kv.apply(.put(key: bytes("k"), value: bytes("z"), condition: .ifPresent, lease: nil, fence: nil)) == .ok)
        #expect(try kv.value("k") == "z")
    }

    @Test func deleteCountsOnlyExistingKeys() throws {
        let kv = try KVFixture()
        _ = try kv.put("a", "1")
        _ = try kv.put("b", "1")
        #expect(try kv.apply(.delete(keys: [bytes("a"), bytes("b"), bytes("c")], fence: nil)) == .deleted(count: 2))
        #expect(try kv.machine.countExisting([bytes("a"), bytes("b")]) == 0)
    }

    @Test func compareAndSwapByValueAbsenceAndModIndex() throws {
        let kv = try KVFixture()
        #expect(try kv.apply(.compareAndSwap(key: bytes("k"), expected: .absent, value: bytes("v1"), fence: nil)) == .swapped(true, modIndex: 1))
        #expect(try kv.apply(.compareAndSwap(key: bytes("k"), expected: .value(bytes("nope")), value: bytes("v2"), fence: nil)) == .swapped(false, modIndex: 1))
        #expect(try kv.apply(.compareAndSwap(key: bytes("k"), expected: .value(bytes("v1")), value: bytes("v2"), fence: nil)) == .swapped(true, modIndex: 3))
        #expect(try kv.apply(.compareAndSwap(key: bytes("k"), expected: .modIndex(1), value: bytes("v3"), fence: nil)) == .swapped(false, modIndex: 3))
        #expect(try kv.apply(.compareAndSwap(key: bytes("k"), expected: .modIndex(3), value: bytes("v3"), fence: nil)) == .swapped(true, modIndex: 5))
        #expect(try kv.value("k") == "v3")
    }

    @Test func incrementFollowsRedisIntegerRules() throws {
        let kv = try KVFixture()
        #expect(try kv.apply(.increment(key: bytes("n"), delta: 5, fence: nil)) == .integer(5))
        #expect(try kv.apply(.increment(key: bytes("n"), delta: -7, fence: nil)) == .integer(-2))
        _ = try kv.put("s", "12abc")
        #expect(try kv.apply(.increment(key: bytes("s"), delta: 1, fence: nil)) == .error(.notInteger))
        _ = try kv.put("lead", " 1")
        #expect(try kv.apply(.increment(key: bytes("lead"), delta: 1, fence: nil)) == .error(.notInteger))
        _ = try kv.put("big", String(Int64.max))
        #expect(try kv.apply(.increment(key: bytes("big"), delta: 1, fence: nil)) == .error(.overflow))
        #expect(try kv.value("big") == String(Int64.max))
    }

    @Test func listReturnsPrefixInByteOrderWithinTheBound() throws {
        let kv = try KVFixture()
        for key in ["app/b", "app/a", "apq", "ap", "app/c", "b"] { _ = try kv.put(key, "v") }
        let keys = try kv.machine.list(prefix: bytes("app/"), limit: 2).map { String(decoding: $0.key, as: UTF8.self) }
        #expect(keys == ["app/a", "app/b"])
        let all = try kv.machine.list(prefix: [], limit: 100).count
        #expect(all == 6)
        _ = try kv.apply(.put(key: [0xFF, 0x01], value: bytes("v"), condition: .always, lease: nil, fence: nil))
        #expect(try kv.machine.list(prefix: [0xFF], limit: 10).count == 1)
    }

    @Test func oversizedKeysAndValuesAreRefusedWithoutEffect() throws {
        var limits = KVLimits()
        limits.keyBytesMax = 4
        limits.valueBytesMax = 8
        let kv = try KVFixture(limits: limits)
        guard case .error(.limitExceeded) = try kv.put("toolong", "v") else { Issue.record("long key accepted"); return }
        guard case .error(.limitExceeded) = try kv.put("k", "123456789") else { Issue.record("long value accepted"); return }
        #expect(try kv.machine.list(prefix: [], limit: 10).isEmpty)
    }

    @Test func undecodableCommandIsAnErrorNotATrap() throws {
        let kv = try KVFixture()
        let applied = try kv.machine.apply([Entry(term: 1, index: 1, payload: .command([0xEE, 1, 2]))])
        guard case .error = applied.first?.result else { Issue.record("garbage applied"); return }
        #expect(kv.machine.appliedIndex == 1)
    }

    @Test func reapplyingAnAppliedEntryIsSkipped() throws {
        let kv = try KVFixture()
        let entry = Entry(term: 1, index: 1, payload: .command(KVCommand(timestampMillis: 1, operation: .increment(key: bytes("n"), delta: 1, fence: nil)).encoded()))
        _ = try kv.machine.apply([entry])
        #expect(try kv.machine.apply([entry]).isEmpty)
        #expect(try kv.value("n") == "1")
    }
}
