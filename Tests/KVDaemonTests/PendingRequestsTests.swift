import KVStore
import RaftCore
import Synchronization
import Testing

@testable import KVDaemon

/// Every waiting client request is answered exactly once: by its outcome, its deadline or the
/// node stopping.
@Suite struct PendingRequestsTests {
    /// Records what each responder was sent.
    final class Answers: Sendable {
        private let sent = Mutex<[String: [Reply]]>([:])

        func responder(_ name: String) -> Responder {
            Responder { reply in self.sent.withLock { $0[name, default: []].append(reply) } }
        }

        subscript(name: String) -> [Reply] { sent.withLock { $0[name] ?? [] } }
        var total: Int { sent.withLock { $0.values.reduce(0) { $0 + $1.count } } }
    }

    static let timeouts = PendingRequests.TimeoutReplies(
        write: .timeout("write"), read: .timeout("read"), readIndexNotReached: .timeout("index"), lock: .timeout("lock"))

    static func write(_ answers: Answers, _ name: String, deadline: UInt64, isInternal: Bool = false) -> PendingRequests.Write {
        PendingRequests.Write(
            term: 1, kind: isInternal ? .internalCommand : .write(.standard), deadline: deadline,
            reply: isInternal ? .none : answers.responder(name))
    }

    static func read(_ answers: Answers, _ name: String, deadline: UInt64) -> PendingRequests.Read {
        PendingRequests.Read(command: .read(.get(Array(name.utf8))), deadline: deadline, reply: answers.responder(name))
    }

    static func id(_ sequence: UInt64) -> ReadRequestID { ReadRequestID(origin: 1, sequence: sequence) }

    /// Deadlines answer exactly the requests that are due, each once, with its kind's reply;
    /// the node's own proposals leave silently.
    @Test func expiryAnswersOnlyWhatIsDue() {
        let answers = Answers()
        var requests = PendingRequests()
        requests.addWrite(Self.write(answers, "w-due", deadline: 10), at: 5)
        requests.addWrite(Self.write(answers, "w-later", deadline: 30), at: 6)
        requests.addWrite(Self.write(answers, "internal", deadline: 10, isInternal: true), at: 7)
        requests.addRead(Self.read(answers, "r-due", deadline: 10), id: Self.id(1))
        requests.addRead(Self.read(answers, "r-ready", deadline: 10), id: Self.id(2))
        #expect(requests.readConfirmed(ReadState(id: Self.id(2), outcome: .ready(9))) == nil)
        requests.addLockWaiter(
            PendingRequests.Waiter(deadline: 10, reply: answers.responder("l-due"), queuedAtMillis: 0),
            for: PendingRequests.LockWaiterKey(name: [1], leaseID: 4))
        requests.addLockWaiter(
            PendingRequests.Waiter(deadline: 30, reply: answers.responder("l-later"), queuedAtMillis: 0),
            for: PendingRequests.LockWaiterKey(name: [1], leaseID: 4))
        requests.expire(now: 10, replies: Self.timeouts)
        #expect(answers["w-due"] == [.timeout("write")])
        #expect(answers["r-due"] == [.timeout("read")])
        #expect(answers["r-ready"] == [.timeout("index")])
        #expect(answers["l-due"] == [.timeout("lock")])
        #expect(answers.total == 4)
        #expect(requests.count == 2, "the later write and the later lock waiter still wait")
        requests.expire(now: 10, replies: Self.timeouts)
        #expect(answers.total == 4, "nothing is answered twice")
    }

    /// A confirmed read is served once the state reaches its index, in confirmation order; a
    /// failed confirmation is handed back to be answered.
    @Test func readsWaitForTheirIndex() {
        let answers = Answers()
        var requests = PendingRequests()
        for sequence in UInt64(1)...3 { requests.addRead(Self.read(answers, "r\(sequence)", deadline: 100), id: Self.id(sequence)) }
        #expect(requests.readConfirmed(ReadState(id: Self.id(2), outcome: .ready(8))) == nil)
        #expect(requests.readConfirmed(ReadState(id: Self.id(1), outcome: .ready(5))) == nil)
        let failed = requests.readConfirmed(ReadState(id: Self.id(3), outcome: .failed(.notLeader(leaderHint: nil))))
        #expect(failed?.1 == .notLeader(leaderHint: nil))
        #expect(requests.takeServableReads(applied: 4).isEmpty)
        #expect(requests.takeServableReads(applied: 7).map(\.command) == [.read(.get(Array("r1".utf8)))])
        #expect(requests.takeServableReads(applied: 8).map(\.command) == [.read(.get(Array("r2".utf8)))])
        #expect(requests.count == 0)
        #expect(requests.readConfirmed(ReadState(id: Self.id(9), outcome: .ready(1))) == nil, "an unknown id is ignored")
    }

    /// A snapshot covers the writes at or below its index; losing leadership answers every
    /// client write but not the node's own proposals; each write leaves once.
    @Test func writesLeaveOnce() {
        let answers = Answers()
        var requests = PendingRequests()
        for index in UInt64(1)...4 { requests.addWrite(Self.write(answers, "w\(index)", deadline: 100), at: LogIndex(index)) }
        requests.addWrite(Self.write(answers, "internal", deadline: 100, isInternal: true), at: 5)
        #expect(requests.takeWrite(at: 1) != nil)
        #expect(requests.takeWrite(at: 1) == nil)
        requests.failWrites(through: 2, with: .err("covered"))
        #expect(answers["w2"] == [.err("covered")] && answers["w3"].isEmpty)
        requests.failAllWrites(with: .err("lost"))
        #expect(answers["w3"] == [.err("lost")] && answers["w4"] == [.err("lost")])
        #expect(answers.total == 3)
        #expect(requests.count == 0)
    }

    /// Lock waiters leave when their lock is granted or their lease ends, for that lease only.
    @Test func lockWaitersLeaveByLockOrLease() {
        let answers = Answers()
        var requests = PendingRequests()
        let waiter = { (name: String) in PendingRequests.Waiter(deadline: 100, reply: answers.responder(name), queuedAtMillis: 0) }
        requests.addLockWaiter(waiter("a4"), for: PendingRequests.LockWaiterKey(name: [1], leaseID: 4))
        requests.addLockWaiter(waiter("b4"), for: PendingRequests.LockWaiterKey(name: [2], leaseID: 4))
        requests.addLockWaiter(waiter("a5"), for: PendingRequests.LockWaiterKey(name: [1], leaseID: 5))
        #expect(requests.takeLockWaiters(name: [1], leaseID: 5).count == 1)
        #expect(requests.takeLockWaiters(leaseID: 4).count == 2)
        #expect(requests.count == 0)
    }

    /// Stopping answers everything still waiting, once.
    @Test func abandonAnswersEverything() {
        let answers = Answers()
        var requests = PendingRequests()
        requests.addWrite(Self.write(answers, "w", deadline: 100), at: 3)
        requests.addRead(Self.read(answers, "r", deadline: 100), id: Self.id(1))
        requests.addRead(Self.read(answers, "ready", deadline: 100), id: Self.id(2))
        _ = requests.readConfirmed(ReadState(id: Self.id(2), outcome: .ready(9)))
        requests.addLockWaiter(
            PendingRequests.Waiter(deadline: 100, reply: answers.responder("l"), queuedAtMillis: 0),
            for: PendingRequests.LockWaiterKey(name: [1], leaseID: 4))
        requests.abandonAll(with: .err("stopping"))
        #expect(answers.total == 4)
        for name in ["w", "r", "ready", "l"] { #expect(answers[name] == [.err("stopping")]) }
        #expect(requests.count == 0)
    }

    /// Forwarded writes leave exactly once: by their tag, their deadline, a snapshot or the stop.
    @Test func forwardedWritesLeaveOnce() {
        let answers = Answers()
        var requests = PendingRequests()
        let tag = { (sequence: UInt64) in ProposalOrigin(nodeID: 2, sequence: sequence) }
        requests.addForward(Self.write(answers, "f-applied", deadline: 30), origin: tag(1))
        requests.addForward(Self.write(answers, "f-due", deadline: 10), origin: tag(2))
        requests.addForward(Self.write(answers, "f-snapshot", deadline: 30), origin: tag(3))
        #expect(requests.forwardCount == 3)
        #expect(requests.count == 3)
        #expect(requests.takeForward(origin: tag(1)) != nil)
        #expect(requests.takeForward(origin: tag(1)) == nil, "taken once")
        requests.expire(now: 10, replies: Self.timeouts)
        #expect(answers["f-due"] == [.timeout("write")])
        requests.failForwards(with: .unavailable("snapshot"))
        #expect(answers["f-snapshot"] == [.unavailable("snapshot")])
        requests.addForward(Self.write(answers, "f-stop", deadline: 30), origin: tag(4))
        requests.abandonAll(with: .unavailable("stop"))
        #expect(answers["f-stop"] == [.unavailable("stop")])
        #expect(requests.count == 0)
        #expect(answers.total == 3)
    }

    static func waiter(_ answers: Answers, _ name: String, deadline: UInt64) -> PendingRequests.Waiter {
        PendingRequests.Waiter(deadline: deadline, reply: answers.responder(name), queuedAtMillis: 0)
    }

    /// Lock waiters are found by deadline, not by a scan: only the due ones are answered, at most
    /// `lockTimeoutsPerCallMax` per call (the rest on the next), waiters that left (granted, lease
    /// ended) are never answered again, and left-over deadlines do not pile up.
    @Test func lockWaiterDeadlines() {
        let answers = Answers()
        var requests = PendingRequests()
        let crowd = PendingRequests.lockTimeoutsPerCallMax * 2 + 100
        for i in 0..<crowd {
            requests.addLockWaiter(
                Self.waiter(answers, "crowd", deadline: 10 + UInt64(i % 3)),
                for: PendingRequests.LockWaiterKey(name: [UInt8(i % 7)], leaseID: UInt64(100 + i)))
        }
        requests.addLockWaiter(Self.waiter(answers, "granted", deadline: 5), for: PendingRequests.LockWaiterKey(name: [9], leaseID: 1))
        requests.addLockWaiter(Self.waiter(answers, "ended-a", deadline: 5), for: PendingRequests.LockWaiterKey(name: [8], leaseID: 2))
        requests.addLockWaiter(Self.waiter(answers, "ended-b", deadline: 50), for: PendingRequests.LockWaiterKey(name: [9], leaseID: 2))
        requests.addLockWaiter(Self.waiter(answers, "later", deadline: 50), for: PendingRequests.LockWaiterKey(name: [9], leaseID: 3))
        #expect(requests.takeLockWaiters(name: [9], leaseID: 1).count == 1)
        #expect(requests.takeLockWaiters(leaseID: 2).count == 2, "a lease's end takes its waiters of every lock")
        #expect(requests.count == crowd + 1)

        requests.expire(now: 9, replies: Self.timeouts)
        #expect(answers.total == 0, "nothing due yet; the granted and ended waiters' deadlines are skipped")
        requests.expire(now: 12, replies: Self.timeouts)
        #expect(answers["crowd"].count == PendingRequests.lockTimeoutsPerCallMax)
        requests.expire(now: 12, replies: Self.timeouts)
        requests.expire(now: 12, replies: Self.timeouts)
        #expect(answers["crowd"].count == crowd && answers["crowd"].allSatisfy { $0 == .timeout("lock") })
        #expect(answers["later"].isEmpty && requests.count == 1)
        requests.expire(now: 50, replies: Self.timeouts)
        #expect(answers["later"] == [.timeout("lock")])
        #expect(answers["granted"].isEmpty && answers["ended-a"].isEmpty && answers["ended-b"].isEmpty)
        #expect(requests.count == 0)

        // Waiters granted before their deadline leave entries behind; they are dropped in bulk.
        for i in 0..<10_000 {
            let key = PendingRequests.LockWaiterKey(name: [1], leaseID: UInt64(i))
            requests.addLockWaiter(Self.waiter(answers, "quick", deadline: 1_000), for: key)
            _ = requests.takeLockWaiters(name: [1], leaseID: UInt64(i))
        }
        #expect(requests.lockDeadlineEntries <= 1_025, "\(requests.lockDeadlineEntries)")
        #expect(answers["quick"].isEmpty)
    }
}
