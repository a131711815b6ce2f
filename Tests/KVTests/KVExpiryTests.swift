import KVStore
import RaftCore
import Testing

/// Keys with a deadline follow the rules of leases: never gone before the deadline by the
/// entry's time, hidden from reads once the applied clock passes it, removed by the leader's
/// expiry entry, and never seen again once a read saw them gone.
@Suite struct KVExpiryTests {
    func set(_ kv: KVFixture, _ key: String, _ value: String, _ expiry: KeyExpiry) throws -> KVResult {
        try kv.apply(.set(SetRequest(key: bytes(key), value: bytes(value), expiry: expiry)))
    }

    func ttl(_ kv: KVFixture, _ key: String, _ form: TTLForm = .millis) throws -> KVResult {
        try kv.machine.read(.ttl(bytes(key), form), nowMillis: kv.nowMillis)
    }

    @Test func aKeyLivesUntilItsDeadlineByTheAppliedClock() throws {
        let kv = try KVFixture()
        #expect(try set(kv, "k", "v", .after(millis: 1_000)) == .ok)
        #expect(try ttl(kv, "k") == .integer(1_000))
        #expect(try ttl(kv, "k", .seconds) == .integer(1))
        #expect(try ttl(kv, "k", .unixMillis) == .integer(Int64(kv.nowMillis + 1_000)))
        // One millisecond before the deadline the key is there, for reads and for writes.
        kv.nowMillis += 999
        _ = try kv.put("other", "x")
        #expect(try kv.value("k") == "v")
        // At the deadline, a read hides it even before any expiry entry deleted it.
        kv.nowMillis += 1
        _ = try kv.put("other", "y")
        #expect(try kv.value("k") == nil)
        #expect(try ttl(kv, "k") == .integer(-2))
        #expect(kv.machine.keyCount == 2)
        #expect(try kv.machine.dueExpiries(nowMillis: kv.nowMillis, limit: 10) == [bytes("k")])
        #expect(try kv.apply(.expireKeys([bytes("k")])) == KVResult.none)
        #expect(kv.machine.keyCount == 1)
        #expect(try kv.machine.dueExpiries(nowMillis: kv.nowMillis, limit: 10).isEmpty)
    }

    @Test func anExpiryEntryNeverRemovesAKeyBeforeItsDeadline() throws {
        let kv = try KVFixture()
        _ = try set(kv, "k", "v", .after(millis: 1_000))
        // A leader whose clock is behind proposes too early: the entry's time decides.
        kv.nowMillis += 500
        _ = try kv.apply(.expireKeys([bytes("k")]))
        #expect(try kv.value("k") == "v")
        // A key given a later deadline since the leader chose it stays.
        _ = try kv.apply(.expire(key: bytes("k"), at: .after(millis: 10_000), condition: .always))
        kv.nowMillis += 600
        _ = try kv.apply(.expireKeys([bytes("k")]))
        #expect(try kv.value("k") == "v")
    }

    @Test func theAppliedClockNeverGoesBackSoAGoneKeyStaysGone() throws {
        let kv = try KVFixture()
        _ = try set(kv, "k", "v", .after(millis: 100))
        kv.nowMillis += 100
        _ = try kv.put("tick", "1")
        #expect(try kv.value("k") == nil)
        // A new leader whose clock is 10 s behind: its entries do not bring the key back.
        try kv.newLeaderTerm()
        kv.nowMillis -= 10_000
        _ = try kv.put("tick", "2")
        #expect(try kv.value("k") == nil)
        #expect(try kv.apply(.put(key: bytes("k"), value: bytes("new"), condition: .ifAbsent, lease: nil, fence: nil)) == .ok)
    }

    @Test func writesSeeAnExpiredKeyAsMissing() throws {
        let kv = try KVFixture()
        _ = try set(kv, "k", "5", .after(millis: 10))
        kv.nowMillis += 10
        #expect(try kv.apply(.increment(key: bytes("k"), delta: 1, fence: nil)) == .integer(1))
        #expect(try ttl(kv, "k") == .integer(-1))
        #expect(kv.machine.keyCount == 1)
    }

    @Test func setDropsTheDeadlineUnlessKeepTTLAndIncrementKeepsIt() throws {
        let kv = try KVFixture()
        _ = try set(kv, "k", "1", .after(millis: 5_000))
        _ = try kv.apply(.increment(key: bytes("k"), delta: 1, fence: nil))
        #expect(try ttl(kv, "k") == .integer(5_000))
        _ = try set(kv, "k", "x", .keep)
        #expect(try ttl(kv, "k") == .integer(5_000))
        _ = try kv.put("k", "y")
        #expect(try ttl(kv, "k") == .integer(-1))
    }

    @Test func expireConditionsFollowRedis() throws {
        let kv = try KVFixture()
        _ = try kv.put("k", "v")
        let key = bytes("k")
        #expect(try kv.apply(.expire(key: key, at: .after(millis: 100), condition: .ifSome)) == .integer(0))
        #expect(try kv.apply(.expire(key: key, at: .after(millis: 100), condition: .ifLater)) == .integer(0))
        #expect(try kv.apply(.expire(key: key, at: .after(millis: 100), condition: .ifNone)) == .integer(1))
        #expect(try kv.apply(.expire(key: key, at: .after(millis: 50), condition: .ifNone)) == .integer(0))
        #expect(try kv.apply(.expire(key: key, at: .after(millis: 200), condition: .ifEarlier)) == .integer(0))
        #expect(try kv.apply(.expire(key: key, at: .after(millis: 200), condition: .ifLater)) == .integer(1))
        #expect(try kv.apply(.persist(key: key)) == .integer(1))
        #expect(try kv.apply(.persist(key: key)) == .integer(0))
        #expect(try kv.apply(.expire(key: bytes("missing"), at: .after(millis: 100), condition: .always)) == .integer(0))
        // A deadline in the past deletes the key at once.
        #expect(try kv.apply(.expire(key: key, at: .at(unixMillis: 1), condition: .always)) == .integer(1))
        #expect(try kv.value("k") == nil)
        #expect(kv.machine.keyCount == 0)
    }

    @Test func getExChangesOnlyTheDeadline() throws {
        let kv = try KVFixture()
        _ = try kv.put("k", "v")
        #expect(try kv.apply(.getEx(key: bytes("k"), change: .expire(.after(millis: 300)))) == .value(bytes("v")))
        #expect(try ttl(kv, "k") == .integer(300))
        #expect(try kv.apply(.getEx(key: bytes("k"), change: .persist)) == .value(bytes("v")))
        #expect(try ttl(kv, "k") == .integer(-1))
        #expect(try kv.apply(.getEx(key: bytes("nope"), change: .persist)) == .value(nil))
    }

    @Test func dueExpiriesComeEarliestFirstWithinTheLimit() throws {
        let kv = try KVFixture()
        for (key, millis) in [("c", 300), ("a", 100), ("b", 200), ("d", 400)] {
            _ = try set(kv, key, "v", .after(millis: UInt64(millis)))
        }
        _ = try kv.put("plain", "v")
        #expect(try kv.machine.dueExpiries(nowMillis: kv.nowMillis + 250, limit: 10) == [bytes("a"), bytes("b")])
        #expect(try kv.machine.dueExpiries(nowMillis: kv.nowMillis + 1_000, limit: 3) == [bytes("a"), bytes("b"), bytes("c")])
    }

    @Test func deadlinesSurviveASnapshot() throws {
        let kv = try KVFixture()
        _ = try set(kv, "k", "v", .after(millis: 1_000))
        _ = try kv.put("plain", "p")
        let copy = try KVFixture()
        let metadata = SnapshotMetadata(
            lastIncludedIndex: kv.machine.appliedIndex, lastIncludedTerm: Term(kv.term), membership: ClusterMembership(voters: [1]))
        try copy.machine.restore(try kv.machine.snapshot(), metadata: metadata)
        #expect(try copy.machine.read(.ttl(bytes("k"), .millis), nowMillis: kv.nowMillis) == .integer(1_000))
        #expect(copy.machine.keyCount == 2)
    }
}
