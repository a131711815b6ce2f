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
    private(set) var lockWaiters: [LockWaiterKey: [Waiter]] = [:]

    /// How many requests wait, of every kind.
    var count: Int { writes.count + forwards.count + reads.count + readyReads.count + lockWaiters.values.reduce(0) { $0 + $1.count } }

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
        lockWaiters[key, default: []].append(waiter)
    }

    /// The requests waiting for lock `name` on `leaseID`, which was just granted; they leave.
    mutating func takeLockWaiters(name: [UInt8], leaseID: UInt64) -> [Waiter] {
        lockWaiters.removeValue(forKey: LockWaiterKey(name: name, leaseID: leaseID)) ?? []
    }

    /// The requests of lease `leaseID`, which ended, for any lock; they leave.
    mutating func takeLockWaiters(leaseID: UInt64) -> [Waiter] {
        var taken: [Waiter] = []
        for key in lockWaiters.keys where key.leaseID == leaseID {
            taken += lockWaiters.removeValue(forKey: key) ?? []
        }
        return taken
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
        for (key, waiters) in lockWaiters {
            let remaining = waiters.filter { $0.deadline > now }
            for waiter in waiters where waiter.deadline <= now { waiter.reply.send(replies.lock) }
            lockWaiters[key] = remaining.isEmpty ? nil : remaining
        }
    }

    /// Answers every request with `reply` (the node is stopping): writes in log order, reads in
    /// the order they were made.
    mutating func abandonAll(with reply: Reply) {
        for key in writes.keys.sorted() { writes.removeValue(forKey: key)?.reply.send(reply) }
        failForwards(with: reply)
        for id in reads.keys.sorted(by: { $0.sequence < $1.sequence }) { reads.removeValue(forKey: id)?.reply.send(reply) }
        for entry in readyReads { entry.read.reply.send(reply) }
        readyReads = []
        for waiters in lockWaiters.values { for waiter in waiters { waiter.reply.send(reply) } }
        lockWaiters = [:]
    }
}
