import KVStore
import RaftCore
import Testing

/// Locks held by leases: FIFO waiters, tokens equal to the granting log index, grants re-checked
/// against the waiter's lease in the same apply (etcd #11456), fenced writes and fence registers.
@Suite struct KVLockTests {
    @Test func tokenIsTheLogIndexOfTheGrantingEntry() throws {
        let kv = try KVFixture()
        let lease = try kv.grantLease()
        let applied = try kv.applyApplied(.lockAcquire(name: bytes("deploy"), leaseID: lease, wait: false))
        #expect(applied.result == .lockGranted(token: applied.index.rawValue))
        #expect(try kv.machine.lockOwner(bytes("deploy")) == KVStateMachine.LockHolder(leaseID: lease, token: applied.index.rawValue))
    }

    @Test func sameLeaseAcquiringAgainGetsTheSameToken() throws {
        let kv = try KVFixture()
        let lease = try kv.grantLease()
        let first = try kv.apply(.lockAcquire(name: bytes("l"), leaseID: lease, wait: true))
        #expect(try kv.apply(.lockAcquire(name: bytes("l"), leaseID: lease, wait: true)) == first)
    }

    @Test func busyLockWithoutWaitReportsTheHolderToken() throws {
        let kv = try KVFixture()
        let a = try kv.grantLease(), b = try kv.grantLease()
        guard case .lockGranted(let token) = try kv.apply(.lockAcquire(name: bytes("l"), leaseID: a, wait: false)) else {
            Issue.record("not granted"); return
        }
        #expect(try kv.apply(.lockAcquire(name: bytes("l"), leaseID: b, wait: false)) == .lockBusy(holderToken: token))
    }

    @Test func waitersAreGrantedInFIFOOrderWithIncreasingTokens() throws {
        let kv = try KVFixture()
        let a = try kv.grantLease(), b = try kv.grantLease(), c = try kv.grantLease()
        guard case .lockGranted(let tokenA) = try kv.apply(.lockAcquire(name: bytes("l"), leaseID: a, wait: true)) else {
            Issue.record("not granted"); return
        }
        #expect(try kv.apply(.lockAcquire(name: bytes("l"), leaseID: c, wait: true)) == .lockQueued(position: 1))
        #expect(try kv.apply(.lockAcquire(name: bytes("l"), leaseID: b, wait: true)) == .lockQueued(position: 2))
        let release = try kv.applyApplied(.lockRelease(name: bytes("l"), token: tokenA))
        #expect(release.result == .lockReleased)
        #expect(release.events == [.lockGranted(name: bytes("l"), leaseID: c, token: release.index.rawValue)])
        #expect(release.index.rawValue > tokenA)
        let second = try kv.applyApplied(.lockRelease(name: bytes("l"), token: release.index.rawValue))
        #expect(second.events == [.lockGranted(name: bytes("l"), leaseID: b, token: second.index.rawValue)])
    }

    @Test func waiterWhoseLeaseEndedIsSkipped() throws {
        let kv = try KVFixture()
        let a = try kv.grantLease(), b = try kv.grantLease(), c = try kv.grantLease()
        _ = try kv.apply(.lockAcquire(name: bytes("l"), leaseID: a, wait: true))
        _ = try kv.apply(.lockAcquire(name: bytes("l"), leaseID: b, wait: true))
        _ = try kv.apply(.lockAcquire(name: bytes("l"), leaseID: c, wait: true))
        _ = try kv.apply(.leaseExpire(leaseID: b, leaderTerm: 1, epoch: 0))
        let end = try kv.applyApplied(.leaseExpire(leaseID: a, leaderTerm: 1, epoch: 0))
        #expect(end.events.contains(.lockGranted(name: bytes("l"), leaseID: c, token: end.index.rawValue)))
        #expect(try kv.machine.lockOwner(bytes("l"))?.leaseID == c)
    }

    @Test func releaseWithAnotherTokenIsRefused() throws {
        let kv = try KVFixture()
        let a = try kv.grantLease()
        _ = try kv.apply(.lockAcquire(name: bytes("l"), leaseID: a, wait: false))
        #expect(try kv.apply(.lockRelease(name: bytes("l"), token: 1)) == .error(.lockNotHeld))
        #expect(try kv.machine.lockOwner(bytes("l")) != nil)
    }

    @Test func fencedWriteWithASupersededTokenIsRejectedAndNotApplied() throws {
        let kv = try KVFixture()
        let a = try kv.grantLease(), b = try kv.grantLease()
        guard case .lockGranted(let oldToken) = try kv.apply(.lockAcquire(name: bytes("l"), leaseID: a, wait: false)) else {
            Issue.record("not granted"); return
        }
        #expect(try kv.put("data", "from-a", fence: FenceCondition(lock: bytes("l"), token: oldToken)) == .ok)
        _ = try kv.apply(.lockAcquire(name: bytes("l"), leaseID: b, wait: true))
        _ = try kv.apply(.leaseExpire(leaseID: a, leaderTerm: 1, epoch: 0))  // a paused past its lease
        guard case .error(.stale) = try kv.put("data", "late-a", fence: FenceCondition(lock: bytes("l"), token: oldToken)) else {
            Issue.record("superseded token accepted"); return
        }
        guard case .error(.stale) = try kv.apply(.delete(keys: [bytes("data")], fence: FenceCondition(lock: bytes("l"), token: oldToken))) else {
            Issue.record("superseded delete accepted"); return
        }
        #expect(try kv.value("data") == "from-a")
        let newToken = try #require(try kv.machine.lockOwner(bytes("l"))?.token)
        #expect(newToken > oldToken)
        #expect(try kv.put("data", "from-b", fence: FenceCondition(lock: bytes("l"), token: newToken)) == .ok)
    }

    @Test func fenceRegisterAcceptsOnlyNonDecreasingTokens() throws {
        let kv = try KVFixture()
        #expect(try kv.apply(.fence(name: bytes("db"), token: 10)) == .fenceAccepted(token: 10))
        #expect(try kv.apply(.fence(name: bytes("db"), token: 10)) == .fenceAccepted(token: 10))
        guard case .error(.stale) = try kv.apply(.fence(name: bytes("db"), token: 9)) else {
            Issue.record("lower token accepted"); return
        }
        #expect(try kv.apply(.fence(name: bytes("db"), token: 12)) == .fenceAccepted(token: 12))
        #expect(try kv.machine.fenceToken(bytes("db")) == 12)
    }
}

/// Exactly-once writes through client sessions (Raft thesis §6.3).
@Suite struct KVSessionTests {
    func register(_ kv: KVFixture) throws -> UInt64 {
        guard case .sessionRegistered(let id) = try kv.apply(.sessionRegister) else { Issue.record("no session"); return 0 }
        return id
    }

    @Test func retryReturnsTheKeptReplyWithoutApplyingAgain() throws {
        let kv = try KVFixture()
        let client = try register(kv)
        let incr = KVOperation.increment(key: bytes("n"), delta: 1, fence: nil)
        #expect(try kv.apply(incr, session: SessionStamp(clientID: client, sequence: 1)) == .integer(1))
        #expect(try kv.apply(incr, session: SessionStamp(clientID: client, sequence: 1)) == .integer(1))
        #expect(try kv.value("n") == "1")
        #expect(try kv.apply(incr, session: SessionStamp(clientID: client, sequence: 2)) == .integer(2))
        #expect(try kv.apply(incr, session: SessionStamp(clientID: client, sequence: 1)) == .error(.sequenceTooOld(1)))
        #expect(try kv.value("n") == "2")
    }

    @Test func unknownSessionIsRefusedDefinitely() throws {
        let kv = try KVFixture()
        #expect(try kv.put("k", "v") == .ok)
        let result = try kv.apply(.put(key: bytes("k"), value: bytes("w"), condition: .always, lease: nil, fence: nil),
            session: SessionStamp(clientID: 12345, sequence: 1))
        #expect(result == .error(.sessionExpired(12345)))
        #expect(try kv.value("k") == "v")
    }

    @Test func sessionsExpireByLeaderStampedTime() throws {
        var limits = KVLimits()
        limits.sessionTimeoutMillis = 1_000
        let kv = try KVFixture(limits: limits)
        let client = try register(kv)
        kv.nowMillis += 900
        #expect(try kv.put("a", "1") == .ok)
        #expect(try kv.apply(.increment(key: bytes("n"), delta: 1, fence: nil), session: SessionStamp(clientID: client, sequence: 1)) == .integer(1))
        kv.nowMillis += 1_001
        #expect(try kv.apply(.increment(key: bytes("n"), delta: 1, fence: nil), session: SessionStamp(clientID: client, sequence: 2)) == .error(.sessionExpired(client)))
        // A leader whose clock is behind cannot revive it: time never goes back.
        kv.nowMillis -= 5_000
        #expect(try kv.apply(.increment(key: bytes("n"), delta: 1, fence: nil), session: SessionStamp(clientID: client, sequence: 2)) == .error(.sessionExpired(client)))
    }

    @Test func sessionCountIsBoundedByEvictingTheLeastRecentlyUsed() throws {
        var limits = KVLimits()
        limits.sessionsMax = 2
        let kv = try KVFixture(limits: limits)
        let first = try register(kv)
        kv.nowMillis += 1
        let second = try register(kv)
        kv.nowMillis += 1
        _ = try kv.apply(.increment(key: bytes("n"), delta: 1, fence: nil), session: SessionStamp(clientID: first, sequence: 1))
        kv.nowMillis += 1
        _ = try register(kv)
        #expect(kv.events.contains(.sessionExpired(clientID: second)))
        #expect(try kv.apply(.increment(key: bytes("n"), delta: 1, fence: nil), session: SessionStamp(clientID: first, sequence: 2)) == .integer(2))
    }
}
