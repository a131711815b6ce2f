/// Progress of one logical request across attempts: its deadline, whether any attempt may
/// have taken effect (which makes a final failure indeterminate), and the backoff.
struct RetryState: Sendable {
    let deadline: ContinuousClock.Instant
    var mayHaveTakenEffect = false
    var lastFailure: KVClientError?
    var backoff: Duration?
    var redirectsInARow = 0

    init(deadline: ContinuousClock.Instant) {
        self.deadline = deadline
    }

    /// Notes a failed attempt; throws it when it must not be retried (indeterminate and the
    /// command is not idempotent).
    mutating func record(_ failure: KVClientError, idempotent: Bool) throws(KVClientError) {
        lastFailure = failure
        if failure.outcome == .indeterminate {
            mayHaveTakenEffect = true
            if !idempotent { throw failure }
        }
    }

    /// The error that ends the request with `failure`: indeterminate if an earlier attempt may
    /// have taken effect and `failure` cannot tell (a lost session cannot say what it applied).
    func final(_ failure: KVClientError) -> KVClientError {
        var failure = failure
        if mayHaveTakenEffect && failure.code == "SESSIONEXPIRED" { failure.outcome = .indeterminate }
        return failure
    }

    /// The error for a deadline that passed while retrying.
    func exhausted() -> KVClientError {
        let last = lastFailure.map { ": last error: \($0)" } ?? ""
        return KVClientError(
            .deadlineExceeded, "no answer from the cluster before the deadline\(last)",
            outcome: mayHaveTakenEffect ? .indeterminate : .definite)
    }
}

extension KVClient {
    /// Sends `arguments` to the leader until it answers, a definite error reply ends it, or the
    /// deadline passes. See `request(_:idempotent:timeout:)` for the retry rules.
    func routed(
        _ arguments: [[UInt8]],
        idempotent: Bool,
        attemptTimeout: Duration? = nil,
        retry: inout RetryState
    ) async throws(KVClientError) -> RESPValue {
        var target = firstTarget
        while true {
            guard ContinuousClock.now < retry.deadline else { throw retry.exhausted() }
            let attemptDeadline = min(retry.deadline, .now + (attemptTimeout ?? configuration.attemptTimeout))
            let reply: RESPValue
            do {
                reply = try await attempt(arguments, at: target, deadline: attemptDeadline)
            } catch {
                // The node is down or cut off: it is no longer a good guess for the leader.
                rememberLeader(nil)
                try retry.record(error, idempotent: idempotent)
                target = nextEndpoint(after: target)
                try await pause(&retry)
                continue
            }
            guard case .error(let line) = reply else {
                rememberLeader(target)
                return reply
            }
            let failure = KVClientError.errorReply(line, endpoint: target)
            switch failure.code {
            case "NOTLEADER":
                retry.lastFailure = failure
                if let leader = Self.redirectTarget(line), leader != target,
                    retry.redirectsInARow <= configuration.endpoints.count
                {
                    // Follow at once; a redirect chain longer than the cluster means stale hints.
                    retry.redirectsInARow += 1
                    rememberLeader(leader)
                    target = leader
                    continue
                }
                retry.redirectsInARow = 0
                rememberLeader(nil)
                target = nextEndpoint(after: target)
                try await pause(&retry)
            case "TIMEOUT", "UNAVAILABLE":
                // Ask the same node again: if it lost leadership it redirects to the new leader.
                try retry.record(failure, idempotent: idempotent)
                try await pause(&retry)
            default:
                throw retry.final(failure)
            }
        }
    }

    /// Sleeps for the next backoff step (doubling up to `backoffMax`), never past the deadline.
    private func pause(_ retry: inout RetryState) async throws(KVClientError) {
        let step = retry.backoff.map { min($0 * 2, configuration.backoffMax) } ?? configuration.backoffInitial
        retry.backoff = step
        let remaining = retry.deadline - ContinuousClock.now
        guard remaining > .zero else { throw retry.exhausted() }
        do {
            try await Task.sleep(for: min(step, remaining))
        } catch {
            throw retry.exhausted()
        }
    }

    /// The leader's client address in `NOTLEADER <id> <host:port>`, or `nil` when unknown.
    static func redirectTarget(_ line: String) -> KVEndpoint? {
        let words = line.split(separator: " ")
        guard words.count >= 3, words[2] != "unknown" else { return nil }
        return KVEndpoint(words[2])
    }
}
