/// Progress of one logical request across attempts: its deadline, whether any attempt may
/// have taken effect (which makes a final failure indeterminate), and the backoff.
struct RetryState: Sendable {
    let deadline: ContinuousClock.Instant
    var mayHaveTakenEffect = false
    var lastFailure: KVClientError?
    var backoff: Duration?
    var redirectsInARow = 0
    /// What each node last did for this request, by address: for the error that ends it.
    var lastOutcomes: [String: Outcome] = [:]
    /// Since when every endpoint has refused connections (nothing listens), if so.
    var everyEndpointRefusedSince: ContinuousClock.Instant?

    enum Outcome: Sendable {
        /// It answered, but knew no leader (`-NOTLEADER unknown`).
        case answeredWithoutLeader
        /// It answered with something else that did not end the request (a redirect, `-TIMEOUT`).
        case answered(String)
        /// No answer: the connection failed or the attempt timed out.
        case unreachable(String)
    }

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
        KVClientError(
            .deadlineExceeded, "no leader reachable before the deadline" + outcomeSummary(),
            outcome: mayHaveTakenEffect ? .indeterminate : .definite)
    }

    /// The error for a request ended because nothing listens on any endpoint.
    func nothingListening() -> KVClientError {
        KVClientError(
            .unreachable, "no node accepts connections (is the cluster running?)" + outcomeSummary(),
            outcome: mayHaveTakenEffect ? .indeterminate : .definite)
    }

    /// Notes whether every one of `endpointCount` endpoints has refused connections, and since
    /// when; true once that has lasted `grace`.
    mutating func nothingListens(endpointCount: Int, grace: Duration) -> Bool {
        let allRefused = lastOutcomes.count >= endpointCount && lastOutcomes.values.allSatisfy {
            if case .unreachable(let why) = $0 { return why == KVClient.refusedReason }
            return false
        }
        guard allRefused else {
            everyEndpointRefusedSince = nil
            return false
        }
        let since = everyEndpointRefusedSince ?? .now
        everyEndpointRefusedSince = since
        return ContinuousClock.now - since >= grace
    }

    /// `: 1 of 3 nodes answered (127.0.0.1:7001: no leader known); no answer from 127.0.0.1:7002,
    /// 127.0.0.1:7003 (Connection refused)`: what the nodes said, grouped.
    func outcomeSummary() -> String {
        guard !lastOutcomes.isEmpty else { return lastFailure.map { ": last error: \($0)" } ?? "" }
        var answered: [String] = []
        var silent: [String: [String]] = [:]
        for (address, outcome) in lastOutcomes.sorted(by: { $0.key < $1.key }) {
            switch outcome {
            case .answeredWithoutLeader: answered.append("\(address): no leader known")
            case .answered(let what): answered.append("\(address): \(what)")
            case .unreachable(let why): silent[why, default: []].append(address)
            }
        }
        var parts = ["\(answered.count) of \(lastOutcomes.count) nodes answered" + (answered.isEmpty ? "" : " (\(answered.joined(separator: "; ")))")]
        for (why, addresses) in silent.sorted(by: { $0.key < $1.key }) {
            parts.append("no answer from \(addresses.joined(separator: ", ")) (\(why))")
        }
        return ": " + parts.joined(separator: "; ")
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
            } catch where error.kind == .errorReply {
                // Refused before the request was sent (authentication): final, and definite.
                throw retry.final(error)
            } catch {
                // The node is down or cut off: it is no longer a good guess for the leader.
                retry.lastOutcomes[target.description] = .unreachable(Self.reason(error))
                rememberLeader(nil)
                try retry.record(error, idempotent: idempotent)
                if let grace = configuration.nothingListeningGrace,
                    retry.nothingListens(endpointCount: configuration.endpoints.count, grace: grace)
                {
                    throw retry.nothingListening()
                }
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
                retry.lastOutcomes[target.description] =
                    Self.redirectTarget(line).map { .answered("redirected to \($0)") } ?? .answeredWithoutLeader
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
                retry.lastOutcomes[target.description] = .answered(line)
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

    /// The reason of a connection refused by the endpoint's host (nothing listens on the port).
    static let refusedReason = "Connection refused"

    /// Why an attempt got no answer, in a few words (`Connection refused`, `timed out`).
    static func reason(_ error: KVClientError) -> String {
        switch error.kind {
        case .deadlineExceeded: return "timed out"
        case .connectionLost: return "connection lost"
        default:
            // "cannot connect: Connection refused (127.0.0.1:7002)" -> "Connection refused".
            let text = error.message
            let afterColon = text.split(separator: ":", maxSplits: 1).last.map { String($0) } ?? text
            let withoutAddress = afterColon.split(separator: "(").first.map { String($0) } ?? afterColon
            let trimmed = String(withoutAddress.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
            return trimmed.isEmpty ? text : trimmed
        }
    }

    /// The leader's client address in `NOTLEADER <id> <host:port>`, or `nil` when unknown.
    static func redirectTarget(_ line: String) -> KVEndpoint? {
        let words = line.split(separator: " ")
        guard words.count >= 3, words[2] != "unknown" else { return nil }
        return KVEndpoint(words[2])
    }
}
