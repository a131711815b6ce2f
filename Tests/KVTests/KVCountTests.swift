import KVStore
import RaftCore
import Testing

/// The live lease and session counts the state machine keeps in memory, instead of counting the
/// tables on every grant and registration: always equal to the rows, enforced at the limit, put
/// back when a batch rolls back, and read again on open and snapshot install.
@Suite struct KVCountTests {
    /// Rows of `table` as SQLite counts them: what the in-memory counts must equal.
    func rows(_ kv: KVFixture, _ table: String) throws -> Int {
        Int(try kv.database.scalarInt64("SELECT count(*) FROM \(table)") ?? -1)
    }

    func expectCountsMatchRows(_ kv: KVFixture, _ machine: KVStateMachine? = nil) throws {
        let machine = machine ?? kv.machine
        #expect(machine.leaseCount == (try rows(kv, "kv_leases")))
        #expect(machine.sessionCount == (try rows(kv, "kv_sessions")))
    }

    @Test("leases-max is enforced at the edge, and every way a lease ends frees its place")
    func leaseLimit() throws {
        var limits = KVLimits()
        limits.leasesMax = 3
        let kv = try KVFixture(limits: limits)
        let leases = try (0..<3).map { _ in try kv.grantLease() }
        #expect(kv.machine.leaseCount == 3)
        #expect(try kv.apply(.leaseGrant(ttlMillis: 5_000)) == .error(.limitExceeded("too many leases (limit 3)")))
        #expect(kv.machine.leaseCount == 3)
        #expect(try kv.apply(.leaseRevoke(leaseID: leases[0])) == .leaseRevoked)
        #expect(try kv.apply(.leaseRevoke(leaseID: leases[0])) == .error(.leaseNotFound(leases[0])))
        #expect(kv.machine.leaseCount == 2)
        _ = try kv.apply(.leaseExpire(leaseID: leases[1], leaderTerm: 1, epoch: 0))
        _ = try kv.apply(.leaseExpire(leaseID: leases[1], leaderTerm: 1, epoch: 0))
        #expect(kv.machine.leaseCount == 1)
        _ = try kv.apply(.leaseExpire(leaseID: leases[2], leaderTerm: 1, epoch: 7))  // stale epoch: ignored
        #expect(kv.machine.leaseCount == 1)
        _ = try kv.grantLease()
        _ = try kv.grantLease()
        #expect(try kv.apply(.leaseGrant(ttlMillis: 5_000)) == .error(.limitExceeded("too many leases (limit 3)")))
        try expectCountsMatchRows(kv)
    }

    @Test("sessions-max evicts the least recently used, and sessions past their timeout are dropped and uncounted")
    func sessionLimit() throws {
        var limits = KVLimits()
        limits.sessionsMax = 2
        limits.sessionTimeoutMillis = 60_000
        let kv = try KVFixture(limits: limits)
        for _ in 0..<3 { _ = try kv.apply(.sessionRegister) }
        #expect(kv.machine.sessionCount == 2)
        #expect(kv.events.filter { if case .sessionExpired = $0 { true } else { false } }.count == 1)
        kv.nowMillis += 61_000  // both idle past the timeout: the next registration drops them
        _ = try kv.apply(.sessionRegister)
        #expect(kv.machine.sessionCount == 1)
        try expectCountsMatchRows(kv)
    }

    @Test("a batch that fails half-way rolls back the rows and the counts together")
    func rollback() throws {
        let kv = try KVFixture()
        _ = try kv.grantLease()
        _ = try kv.apply(.sessionRegister)
        // Make the third entry of the batch fail inside the transaction, after a grant and a
        // registration have already changed the tables and the counts.
        try kv.database.execute(
            "CREATE TRIGGER fail_fence BEFORE INSERT ON kv_fences BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
        let batch: [KVOperation] = [.leaseGrant(ttlMillis: 5_000), .sessionRegister, .fence(name: bytes("f"), token: 1)]
        #expect(throws: StorageError.self) { try kv.applyBatch(batch) }
        #expect(kv.machine.leaseCount == 1)
        #expect(kv.machine.sessionCount == 1)
        try expectCountsMatchRows(kv)
        try kv.database.execute("DROP TRIGGER fail_fence")
        let applied = try kv.applyBatch(batch)
        #expect(applied.count == 3)
        #expect(kv.machine.leaseCount == 2)
        #expect(kv.machine.sessionCount == 2)
        try expectCountsMatchRows(kv)
    }

    @Test("counts are read from the tables when the state machine opens and when a snapshot is installed")
    func reopenAndRestore() throws {
        let kv = try KVFixture()
        for _ in 0..<5 { _ = try kv.grantLease() }
        for _ in 0..<3 { _ = try kv.apply(.sessionRegister) }
        let reopened = try KVStateMachine(database: kv.database)
        #expect(reopened.leaseCount == 5)
        #expect(reopened.sessionCount == 3)

        let empty = try KVFixture()
        #expect(empty.machine.leaseCount == 0)
        let metadata = SnapshotMetadata(
            lastIncludedIndex: kv.machine.appliedIndex, lastIncludedTerm: Term(kv.term),
            membership: ClusterMembership(voters: [1]))
        try empty.machine.restore(try kv.machine.snapshot(), metadata: metadata)
        #expect(empty.machine.leaseCount == 5)
        #expect(empty.machine.sessionCount == 3)
        try expectCountsMatchRows(empty)
    }
}
