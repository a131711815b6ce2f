/// This client's exactly-once session: its id and the last sequence number handed out.
struct ClientSession: Sendable {
    var id: Int64
    var lastSequence: Int64
}

/// A FIFO gate that lets one task at a time through; isolated to its actor.
///
/// Session writes go through it one at a time because the server keeps only the last reply per
/// session: a higher sequence number applied first would make a lower one in flight `-ERR`.
struct AsyncGate: Sendable {
    fileprivate var busy = false
    fileprivate var waiters: [CheckedContinuation<Void, Never>] = []
}

extension KVClient {
    /// Runs `arguments` (a write command) exactly once through this client's session: it is sent
    /// as `SESSION <id> <seq> ...`, registering the session first if needed, and every retry of
    /// this one write reuses the same `seq`, so the server applies it at most once and answers a
    /// retry with the first attempt's reply. Writes through one client are serialised.
    ///
    /// An indeterminate error is thrown only when the deadline passes after an attempt that may
    /// have taken effect, or when the session expired in between (the server then no longer
    /// knows). If the session expired before anything was applied, a new one is registered.
    public func write(_ arguments: [[UInt8]], timeout: Duration? = nil) async throws(KVClientError) -> RESPValue {
        await enterGate()
        defer { leaveGate() }
        var retry = RetryState(deadline: ContinuousClock.now + (timeout ?? configuration.requestTimeout))
        for _ in 0..<Self.sessionRegistrationsPerWriteMax {
            let (id, sequence) = try await nextSequence(deadline: retry.deadline)
            let wrapped = [Array("SESSION".utf8), Array(String(id).utf8), Array(String(sequence).utf8)] + arguments
            do {
                return try await routed(wrapped, idempotent: true, retry: &retry)
            } catch where error.code == "SESSIONEXPIRED" && error.outcome == .definite {
                session = nil
                retry.lastFailure = error
            }
        }
        throw retry.lastFailure ?? retry.exhausted()
    }

    /// Most times one write registers a new session after `-SESSIONEXPIRED` before giving up
    /// (more would mean the server forgets sessions as fast as they are made).
    static let sessionRegistrationsPerWriteMax = 3

    /// Text-argument convenience for `write(_:timeout:)`.
    public func write(_ arguments: [String], timeout: Duration? = nil) async throws(KVClientError) -> RESPValue {
        try await write(arguments.map { Array($0.utf8) }, timeout: timeout)
    }

    /// The session id and a fresh sequence number. A number is never handed out twice, even if
    /// its write failed, because the server may have stored a reply under it.
    private func nextSequence(deadline: ContinuousClock.Instant) async throws(KVClientError) -> (Int64, Int64) {
        if session == nil {
            // Registering twice after a lost reply only leaves an unused session to expire.
            var retry = RetryState(deadline: deadline)
            let reply = try await routed([Array("SESSION".utf8), Array("REGISTER".utf8)], idempotent: true, retry: &retry)
            guard case .integer(let id) = reply else {
                throw KVClientError(.unexpectedReply, "SESSION REGISTER answered \(reply), expected an integer")
            }
            session = ClientSession(id: id, lastSequence: 0)
        }
        guard var current = session else {
            throw KVClientError(.unexpectedReply, "no session")
        }
        current.lastSequence += 1
        session = current
        return (current.id, current.lastSequence)
    }

    private func enterGate() async {
        guard sessionGate.busy else {
            sessionGate.busy = true
            return
        }
        await withCheckedContinuation { sessionGate.waiters.append($0) }
    }

    private func leaveGate() {
        if sessionGate.waiters.isEmpty {
            sessionGate.busy = false
        } else {
            // Hand over directly so no newcomer overtakes the queue.
            sessionGate.waiters.removeFirst().resume()
        }
    }
}
