import KVStore
import RaftCore
import Testing

/// A state machine on an in-memory SQLite database, fed entries with consecutive indexes.
final class KVFixture {
    let database: SQLiteConnection
    let machine: KVStateMachine
    var nextIndex: UInt64 = 1
    var term: UInt64 = 1
    var nowMillis: UInt64 = 1_000_000
    /// Every event the applied entries produced, in order.
    var events: [KVEvent] = []

    init(limits: KVLimits = KVLimits()) throws {
        database = try SQLiteConnection.inMemory()
        machine = try KVStateMachine(database: database, limits: limits)
    }

    /// Applies one command in the current term; returns its result.
    @discardableResult
    func apply(_ operation: KVOperation, session: SessionStamp? = nil) throws -> KVResult {
        try applyApplied(operation, session: session).result
    }

    func applyApplied(_ operation: KVOperation, session: SessionStamp? = nil) throws -> KVApplied {
        let command = KVCommand(session: session, timestampMillis: nowMillis, operation: operation)
        let entry = Entry(term: Term(term), index: LogIndex(nextIndex), payload: .command(command.encoded()))
        nextIndex += 1
        let applied = try machine.apply([entry])
        let result = try #require(applied.first)
        events.append(contentsOf: result.events)
        return result
    }

    /// Applies `operations` as one batch of consecutive entries (one transaction). If the batch
    /// fails, the next index is unchanged, as Raft would offer the same entries again.
    func applyBatch(_ operations: [KVOperation]) throws -> [KVApplied] {
        let entries = operations.enumerated().map { offset, operation in
            let command = KVCommand(session: nil, timestampMillis: nowMillis, operation: operation)
            let index = LogIndex(nextIndex + UInt64(offset))
            return Entry(term: Term(term), index: index, payload: .command(command.encoded()))
        }
        let applied = try machine.apply(entries)
        nextIndex += UInt64(entries.count)
        for result in applied { events.append(contentsOf: result.events) }
        return applied
    }

    /// Applies a no-op in a new term, as a new leader's first entry would be.
    func newLeaderTerm() throws {
        term += 1
        _ = try machine.apply([Entry(term: Term(term), index: LogIndex(nextIndex), payload: .noop)])
        nextIndex += 1
    }

    func put(_ key: String, _ value: String, lease: UInt64? = nil, fence: FenceCondition? = nil) throws -> KVResult {
        try apply(.put(key: bytes(key), value: bytes(value), condition: .always, lease: lease, fence: fence))
    }

    func value(_ key: String) throws -> String? {
        try machine.get(bytes(key)).map { String(decoding: $0.value, as: UTF8.self) }
    }

    func grantLease(ttlMillis: UInt64 = 5_000) throws -> UInt64 {
        guard case .leaseGranted(let id, _) = try apply(.leaseGrant(ttlMillis: ttlMillis)) else {
            Issue.record("lease grant failed")
            return 0
        }
        return id
    }
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
