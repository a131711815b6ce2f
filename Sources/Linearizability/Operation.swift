/// What a client learned about one operation it issued.
///
/// The distinction matters because kvd's errors say whether a command *definitely did not* take
/// effect or *may have* taken effect, and the checker can only be exact if the history
/// keeps that distinction:
///
/// - A reply, including a definite rejection that is itself an observation of the state (a
///   compare-and-swap that answered "mismatch", a fenced write or fence that answered `-STALE`,
///   a release that answered "not held"), is `.returned` with the model output that encodes it.
/// - `-TIMEOUT`, `-UNAVAILABLE`, a dropped connection or a crashed client is `.unknown`: the
///   operation may have taken effect at any point after its call (with any output the model
///   allows) or never.
/// - A definite error that observed nothing (`-NOTLEADER`, `-ERR` for a bad request) is not
///   recorded at all: the operation did not happen.
public enum Outcome<Output> {
    /// The client received `output` at time `at`.
    case returned(Output, at: Int64)
    /// The client never learned the outcome. The return time is +infinity.
    case unknown
}

extension Outcome: Sendable where Output: Sendable {}
extension Outcome: Equatable where Output: Equatable {}

/// One operation of a concurrent history: who called it, when, with what input, and what came
/// back.
///
/// Times are integers on one clock shared by all clients (nanoseconds of a monotonic clock,
/// simulator ticks, or event positions). Operation A precedes operation B in real time only if
/// A returned strictly before B was called; operations whose intervals touch or overlap are
/// concurrent and may linearize in either order.
public struct Operation<Input, Output> {
    /// The client that issued the operation. The checker does not use it; it makes
    /// counterexamples readable.
    public var clientID: Int
    /// The operation's input, interpreted by the model.
    public var input: Input
    /// When the client sent the request.
    public var callTime: Int64
    /// What the client learned.
    public var outcome: Outcome<Output>
    /// Position of this operation in the history given to `LinearizabilityChecker.check`, set by
    /// the checker so that a counterexample can point back into the caller's history; -1 until
    /// then.
    public internal(set) var index: Int = -1

    /// An operation that returned `output` at `returned`.
    ///
    /// - Precondition: `called <= returned < Int64.max`.
    public init(clientID: Int, input: Input, called: Int64, returned: Int64, output: Output) {
        self.init(clientID: clientID, input: input, called: called, outcome: .returned(output, at: returned))
    }

    /// An operation with the given outcome; use `.unknown` for a request whose outcome the client
    /// never learned.
    ///
    /// - Precondition: a known outcome returned at or after `called`, and before `Int64.max`.
    public init(clientID: Int, input: Input, called: Int64, outcome: Outcome<Output>) {
        if case .returned(_, let returned) = outcome {
            precondition(called <= returned, "an operation cannot return (\(returned)) before it is called (\(called))")
            precondition(returned < Int64.max, "Int64.max is reserved for the +infinity of an unknown outcome")
        }
        self.clientID = clientID
        self.input = input
        self.callTime = called
        self.outcome = outcome
    }

    /// When the client received the reply; `Int64.max` (+infinity) when the outcome is unknown.
    public var returnTime: Int64 {
        switch outcome {
        case .returned(_, let at): at
        case .unknown: Int64.max
        }
    }

    /// The observed output, or nil when the outcome is unknown.
    public var output: Output? {
        switch outcome {
        case .returned(let output, _): output
        case .unknown: nil
        }
    }

    /// Whether the client never learned the outcome.
    public var isOutcomeUnknown: Bool {
        switch outcome {
        case .returned: false
        case .unknown: true
        }
    }
}

extension Operation: Sendable where Input: Sendable, Output: Sendable {}

extension Operation: CustomStringConvertible {
    /// One line: position, client, interval, input and output, e.g.
    /// `#3 client 2 [10, 25] put("x", "1") -> ok`; an unknown outcome prints as `[10, inf) ... -> ?`.
    public var description: String {
        switch outcome {
        case .returned(let output, let at):
            "#\(index) client \(clientID) [\(callTime), \(at)] \(input) -> \(output)"
        case .unknown:
            "#\(index) client \(clientID) [\(callTime), inf) \(input) -> ? (outcome unknown)"
        }
    }
}
