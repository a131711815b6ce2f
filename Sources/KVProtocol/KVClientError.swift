/// Whether a failed request may have changed the store (docs/PROTOCOL.md, "Errors").
public enum KVOutcome: Hashable, Sendable {
    /// The command definitely did not take effect; it can be retried freely.
    case definite
    /// The command may or may not have taken effect; only a session retry (same sequence
    /// number) can settle it exactly once.
    case indeterminate
}

/// A failed request, telling whether it may have taken effect.
public struct KVClientError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Hashable, Sendable {
        /// The server answered an error reply; `code` is its first word (`ERR`, `STALE`, ...).
        case errorReply
        /// No connection could be made; nothing was sent.
        case unreachable
        /// The connection closed, or no reply came within the attempt's time, after the request
        /// was sent.
        case connectionLost
        /// The overall deadline passed while retrying; `message` names the last failure.
        case deadlineExceeded
        /// The server sent bytes that are not valid RESP2.
        case protocolViolation
        /// An endpoint list or address that cannot be parsed.
        case invalidEndpoint
        /// A reply of an unexpected shape for the command (e.g. text where an integer belongs).
        case unexpectedReply
    }

    /// What went wrong.
    public var kind: Kind
    /// Whether the command may have taken effect.
    public var outcome: KVOutcome
    /// For `.errorReply`, the error code (the reply's first word, upper-case); otherwise `nil`.
    public var code: String?
    /// One line a user can act on, e.g. `STALE token 7 no longer holds lock deploy`.
    public var message: String
    /// The endpoint of the last attempt, if any.
    public var endpoint: KVEndpoint?

    /// An error with an explicit outcome.
    public init(
        _ kind: Kind,
        _ message: String,
        outcome: KVOutcome = .definite,
        code: String? = nil,
        endpoint: KVEndpoint? = nil
    ) {
        self.kind = kind
        self.outcome = outcome
        self.code = code
        self.message = message
        self.endpoint = endpoint
    }

    /// The error for an error reply line (without the leading `-`), classified by its code.
    public static func errorReply(_ line: String, endpoint: KVEndpoint?) -> KVClientError {
        let code = String(line.prefix { $0 != " " }).uppercased()
        return KVClientError(.errorReply, line, outcome: outcome(ofErrorCode: code), code: code, endpoint: endpoint)
    }

    /// The outcome an error code stands for (docs/PROTOCOL.md). Codes this client does not know
    /// are treated as indeterminate, the only safe assumption.
    public static func outcome(ofErrorCode code: String) -> KVOutcome {
        switch code {
        case "NOTLEADER", "STALE", "LOCKED", "SESSIONEXPIRED", "ERR", "WRONGTYPE", "NOAUTH", "NOPERM", "WRONGPASS", "EXECABORT":
            return .definite
        case "TIMEOUT", "UNAVAILABLE": return .indeterminate
        default: return .indeterminate
        }
    }

    public var description: String {
        guard let endpoint, kind != .errorReply else { return message }
        return "\(message) (\(endpoint))"
    }
}
