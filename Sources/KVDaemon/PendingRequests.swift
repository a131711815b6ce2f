import HeapModule
import KVStore
import RaftCore

/// The client requests a node has started and not answered yet: writes waiting for their entry
/// to apply (by log index, or by origin tag when forwarded to the leader), reads waiting for leadership to be confirmed (by read id) and then for
/// the state machine to reach their read index, and `LOCK ... WAIT` requests queued behind a
/// holder. Every request leaves exactly once — answered, expired or abandoned — so each is
/// answered exactly once. Only the Raft loop touches it.
struct PendingRequests {
    struct Write {
        var term: Term
        var kind: Kind
        var deadline: UInt64
        var reply: Responder

        enum Kind {
            case write(ClientCommand.WriteReplyStyle)
            case lock(name: [UInt8], leaseID: UInt64, waitDeadline: UInt64?)
            /// Proposed by this node itself (lease expiry, checkpoint): nobody waits.
            case internalCommand
            /// `MEMBER ...`: `+OK` once the entry that completes the change applies.
            case membershipChange
        }

        var isInternal: Bool {
            if case .internalCommand = kind { return true }
            return false
        }
    }

    struct Read {
        var command: ClientCommand
        var deadline: UInt64
        var reply: Responder
    }

    struct LockWaiterKey: Hashable {
        var name: [UInt8]
        var leaseID: UInt64
    }

    struct Waiter {
        var deadline: UInt64
        var reply: Responder
        /// When the request joined the queue, for the lock wait-time metric.
        var queuedAtMillis: UInt64
    }

    /// A queued waiter's deadline, ordered by it alone (for `lockWaiterDeadlines`).
    struct LockWaiterDue: Comparable {
        var deadline: UInt64
        var key: LockWaiterKey

        static func < (a: LockWaiterDue, b: LockWaiterDue) -> Bool { a.deadline < b.deadline }
    }

    /// What the replies of expired requests say.
    struct TimeoutReplies {
        var write: Reply
        var read: Reply
        var readIndexNotReached: Reply
        var lock: Reply
    }

    private(set) var writes: [LogIndex: Write] = [:]
    /// Writes this follower forwarded to its leader, by their origin tag (their index is unknown).
    private(set) var forwards: [ProposalOrigin: Write] = [:]
    private(set) var reads: [ReadRequestID: Read] = [:]
    private(set) var readyReads: [(index: LogIndex, read: Read)] = []
    /// Lock waiters by lease, then by lock name: a lease's end takes all of its waiters at once.
    private var lockWaiters: [UInt64: [[UInt8]: [Waiter]]] = [:]
    private(set) var lockWaiterCount = 0
    /// Every queued waiter's deadline, earliest first, so that `expire` touches only the waiters
    /// that are due, not all of them every tick (100,000 waiters cost the loop milliseconds per
    /// tick when scanned). Entries of waiters that left earlier are skipped when they come up, and
    /// dropped all at once when they outnumber the live ones (`compactLockWaiterDeadlines`).
    private var lockWaiterDeadlines = Heap<LockWaiterDue>()
    /// Entries in that heap (live waiters and left-over ones), for tests.
    var lockDeadlineEntries: Int { lockWaiterDeadlines.count }

    /// Most lock waiters `expire` answers in one call; the rest wait for the next (one tick later),
    /// so that a crowd timing out together does not hold the loop for one long iteration.
    static let lockTimeoutsPerCallMax = 5_000

    /// How many requests wait, of every kind.
    var count: Int { writes.count + forwards.count + reads.count + readyReads.count + lockWaiterCount }

    // MARK: Writes

    mutating func addWrite(_ write: Write, at index: LogIndex) { writes[index] = write }

    /// The write proposed at `index`, if any, which leaves the table.
    mutating func takeWrite(at index: LogIndex) -> Write? { writes.removeValue(forKey: index) }

    /// Answers every write at or below `index` (a received snapshot covered them), in log order.
    mutating func failWrites(through index: LogIndex, with reply: Reply) {
        for key in writes.keys.sorted() where key <= index { writes.removeValue(forKey: key)?.reply.send(reply) }
    }

    /// Answers every write nobody outside waits for, in log order; `reply` is not sent for the
    /// node's own proposals.
    mutating func failAllWrites(with reply: Reply) {
        for key in writes.keys.sorted() {
            guard let write = writes.removeValue(forKey: key), !write.isInternal else { continue }
            write.reply.send(reply)
        }
    }

    // MARK: Forwarded writes

    var forwardCount: Int { forwards.count }

    mutating func addForward(_ write: Write, origin: ProposalOrigin) { forwards[origin] = write }

    /// The forwarded write tagged `origin`, if any, which leaves the table.
    mutating func takeForward(origin: ProposalOrigin) -> Write? { forwards.removeValue(forKey: origin) }

    /// Answers every forwarded write with `reply`, oldest first (a snapshot replaced the log they
    /// would have been recognised in).
    mutating func failForwards(with reply: Reply) {
        for key in forwards.keys.sorted(by: { $0.sequence < $1.sequence }) { forwards.removeValue(forKey: key)?.reply.send(reply) }
    }

    // MARK: Reads

    mutating func addRead(_ read: Read, id: ReadRequestID) { reads[id] = read }

    /// Leadership was confirmed (or not) for read `state.id`: a confirmed read waits for the
    /// state machine to reach its index; a failed one is returned to be answered.
    mutating func readConfirmed(_ state: ReadState) -> (Read, ProposalError)? {
        guard let read = reads.removeValue(forKey: state.id) else { return nil }
        switch state.outcome {
        case .ready(let index):
            readyReads.append((index, read))
            return nil
        case .failed(let error):
            return (read, error)
        }
    }

    /// The confirmed reads whose index the state machine has reached (`applied`), in the order
    /// they were confirmed; they leave the table.
    mutating func takeServableReads(applied: LogIndex) -> [Read] {
        guard !readyReads.isEmpty else { return [] }
        var servable: [Read] = []
        readyReads.removeAll { entry in
            guard entry.index <= applied else { return false }
            servable.append(entry.read)
            return true
        }
        return servable
    }

    // MARK: Lock waiters

    mutating func addLockWaiter(_ waiter: Waiter, for key: LockWaiterKey) {
        lockWaiters[key.leaseID, default: [:]][key.name, default: []].append(waiter)
        lockWaiterCount += 1
        lockWaiterDeadlines.insert(LockWaiterDue(deadline: waiter.deadline, key: key))
        compactLockWaiterDeadlines()
    }

    /// The requests waiting for lock `name` on `leaseID`, which was just granted; they leave.
    mutating func takeLockWaiters(name: [UInt8], leaseID: UInt64) -> [Waiter] {
        guard let taken = lockWaiters[leaseID]?.removeValue(forKey: name) else { return [] }
        if lockWaiters[leaseID]?.isEmpty == true { lockWaiters[leaseID] = nil }
        lockWaiterCount -= taken.count
        return taken
    }

    /// The requests of lease `leaseID`, which ended, for any lock; they leave.
    mutating func takeLockWaiters(leaseID: UInt64) -> [Waiter] {
        guard let byName = lockWaiters.removeValue(forKey: leaseID) else { return [] }
        let taken = byName.values.flatMap { $0 }
        lockWaiterCount -= taken.count
        return taken
    }

    /// Answers the lock waiters due at `now`, earliest first, at most `lockTimeoutsPerCallMax`.
    private mutating func expireLockWaiters(now: UInt64, reply: Reply) {
        var answered = 0
        while answered < Self.lockTimeoutsPerCallMax, let due = lockWaiterDeadlines.min, due.deadline <= now {
            lockWaiterDeadlines.removeMin()
            let key = due.key
            guard var waiters = lockWaiters[key.leaseID]?[key.name] else { continue }
            let before = waiters.count
            waiters.removeAll { waiter in
                guard waiter.deadline <= now else { return false }
                waiter.reply.send(reply)
                return true
            }
            guard waiters.count < before else { continue }
            answered += before - waiters.count
            lockWaiterCount -= before - waiters.count
            lockWaiters[key.leaseID]?[key.name] = waiters.isEmpty ? nil : waiters
            if lockWaiters[key.leaseID]?.isEmpty == true { lockWaiters[key.leaseID] = nil }
        }
    }

    /// Rebuilds the deadline heap from the live waiters once entries of waiters that already
    /// left (granted, lease ended) outnumber them: memory stays proportional to who waits.
    private mutating func compactLockWaiterDeadlines() {
        guard lockWaiterDeadlines.count > 2 * lockWaiterCount + 1024 else { return }
        var live: [LockWaiterDue] = []
        live.reserveCapacity(lockWaiterCount)
        for (leaseID, byName) in lockWaiters {
            for (name, waiters) in byName {
                for waiter in waiters { live.append(LockWaiterDue(deadline: waiter.deadline, key: LockWaiterKey(name: name, leaseID: leaseID))) }
            }
        }
        lockWaiterDeadlines = Heap(live)
    }

    // MARK: Deadlines and shutdown

    /// Answers every request whose deadline is at or before `now` (the node's own proposals
    /// silently).
    mutating func expire(now: UInt64, replies: TimeoutReplies) {
        for (index, write) in writes where write.deadline <= now {
            writes[index] = nil
            if !write.isInternal { write.reply.send(replies.write) }
        }
        for (origin, write) in forwards where write.deadline <= now {
            forwards[origin] = nil
            write.reply.send(replies.write)
        }
        for (id, read) in reads where read.deadline <= now {
            reads[id] = nil
            read.reply.send(replies.read)
        }
        readyReads.removeAll { entry in
            guard entry.read.deadline <= now else { return false }
            entry.read.reply.send(replies.readIndexNotReached)
            return true
        }
        expireLockWaiters(now: now, reply: replies.lock)
    }

    /// Answers every request with `reply` (the node is stopping): writes in log order, reads in
    /// the order they were made.
    mutating func abandonAll(with reply: Reply) {
        for key in writes.keys.sorted() { writes.removeValue(forKey: key)?.reply.send(reply) }
        failForwards(with: reply)
        for id in reads.keys.sorted(by: { $0.sequence < $1.sequence }) { reads.removeValue(forKey: id)?.reply.send(reply) }
        for entry in readyReads { entry.read.reply.send(reply) }
        readyReads = []
        for byName in lockWaiters.values { for waiters in byName.values { for waiter in waiters { waiter.reply.send(reply) } } }
        lockWaiters = [:]
        lockWaiterCount = 0
        lockWaiterDeadlines = Heap()
    }
}
