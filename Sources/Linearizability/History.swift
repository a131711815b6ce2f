/// One event of a history written as a list of calls and returns (Porcupine's `Event`), where
/// only the order of events matters: an event's position in the list is its time.
public enum Event<Input, Output> {
    /// Client `clientID` called operation `id` with `input`.
    case call(id: Int, clientID: Int, input: Input)
    /// Operation `id` returned `output`.
    case returned(id: Int, output: Output)
}

extension Event: Sendable where Input: Sendable, Output: Sendable {}

/// A malformed event list.
public enum HistoryError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A return for an operation id that was never called (or not yet, at that position).
    case returnWithoutCall(id: Int)
    /// Two calls with the same operation id.
    case duplicateCall(id: Int)
    /// Two returns for the same operation id.
    case duplicateReturn(id: Int)

    /// One line naming the operation id at fault.
    public var description: String {
        switch self {
        case .returnWithoutCall(let id): "operation \(id) returned without being called first"
        case .duplicateCall(let id): "operation \(id) was called twice"
        case .duplicateReturn(let id): "operation \(id) returned twice"
        }
    }
}

extension Array {
    /// The operations of a list of call and return events; event `i` happens at time `i`.
    ///
    /// A call without a return is an operation whose outcome is unknown (the client timed out or
    /// crashed). The operations come out in the order of their calls.
    ///
    /// ```swift
    /// let history = try [KVModel<String, String>.Operation](events: [
    ///     .call(id: 0, clientID: 1, input: .put("x", "1")),
    ///     .call(id: 1, clientID: 2, input: .get("x")),
    ///     .returned(id: 0, output: .ok),
    ///     .returned(id: 1, output: .value("1")),
    /// ])
    /// ```
    public init<Input, Output>(events: [Event<Input, Output>]) throws(HistoryError)
    where Element == Operation<Input, Output> {
        var operations: [Operation<Input, Output>] = []
        var positionOfID: [Int: Int] = [:]
        for (time, event) in events.enumerated() {
            switch event {
            case .call(let id, let clientID, let input):
                guard positionOfID[id] == nil else { throw .duplicateCall(id: id) }
                positionOfID[id] = operations.count
                operations.append(Operation(clientID: clientID, input: input, called: Int64(time), outcome: .unknown))
            case .returned(let id, let output):
                guard let position = positionOfID[id] else { throw .returnWithoutCall(id: id) }
                guard operations[position].isOutcomeUnknown else { throw .duplicateReturn(id: id) }
                operations[position].outcome = .returned(output, at: Int64(time))
            }
        }
        self = operations
    }
}

/// Builds a history as a test or harness runs: note each call when the request is sent and each
/// reply when it arrives, with times from one clock shared by all clients.
///
/// Whatever has no reply when `operations` is read counts as an unknown outcome. Record
/// `-TIMEOUT`/`-UNAVAILABLE` by never calling `returned` for that call; record a definite error
/// that observed nothing (`-NOTLEADER`) with `discard`.
public struct HistoryRecorder<Input, Output> {
    /// A call that has been recorded, to be completed by `returned` or `discard`.
    public struct Call: Hashable, Sendable {
        fileprivate let position: Int
    }

    private var recorded: [Operation<Input, Output>?] = []

    /// An empty history.
    public init() {}

    /// Records that `clientID` sent `input` at time `at`.
    public mutating func call(clientID: Int, input: Input, at time: Int64) -> Call {
        recorded.append(Operation(clientID: clientID, input: input, called: time, outcome: .unknown))
        return Call(position: recorded.count - 1)
    }

    /// Records the reply to `call`, received at time `at`.
    ///
    /// - Precondition: `call` has not been completed or discarded.
    public mutating func returned(_ call: Call, output: Output, at time: Int64) {
        guard let operation = recorded[call.position], operation.isOutcomeUnknown else {
            preconditionFailure("call \(call.position) was already completed or discarded")
        }
        recorded[call.position] = Operation(
            clientID: operation.clientID, input: operation.input, called: operation.callTime, returned: time, output: output
        )
    }

    /// Forgets `call`: it definitely did not take effect and observed nothing.
    public mutating func discard(_ call: Call) {
        recorded[call.position] = nil
    }

    /// The history so far, in the order of the calls.
    public var operations: [Operation<Input, Output>] {
        recorded.compactMap { $0 }
    }
}

extension HistoryRecorder: Sendable where Input: Sendable, Output: Sendable {}
