import KVProtocol
import Linearizability
import Synchronization

/// Nanoseconds since the run started, on the monotonic clock every client shares.
struct HarnessClock: Sendable {
    let start = ContinuousClock.now

    func now() -> Int64 {
        let elapsed = ContinuousClock.now - start
        return elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
    }
}

typealias Registers = KVModel<String, String>

/// How a write ended, for the availability figures.
enum WriteResult: Sendable {
    /// The cluster answered: applied, or definitely refused by the state machine (`-STALE`,
    /// `-ERR lock is not held`), which also took a leader to decide.
    case ok
    /// No leader answered before the deadline (unreachable nodes, `-NOTLEADER` everywhere).
    case failed
    /// The deadline passed after an attempt that may have taken effect.
    case indeterminate

    /// The result of a write that threw `error`.
    init(_ error: KVClientError) {
        if error.outcome == .indeterminate {
            self = .indeterminate
        } else if error.kind == .errorReply && error.code != "NOTLEADER" {
            self = .ok
        } else {
            self = .failed
        }
    }
}

/// An acknowledged fenced increment of the lock workload's counter.
struct FencedIncrement: Sendable {
    var token: Int
    var value: Int
    var called: Int64
    var returned: Int64
}

/// Everything the workloads observed, shared by all client tasks: the histories for the
/// checkers, the lock and session tallies, and the times of successes for the availability
/// figures.
final class Recorder: Sendable {
    struct State: Sendable {
        var registers = HistoryRecorder<Registers.Input, Registers.Output>()
        var fences = HistoryRecorder<LockModel.Input, LockModel.Output>()
        /// Return times of every successful request of any client.
        var successes: [Int64] = []
        /// Call time and result of every write of any workload.
        var writes: [(called: Int64, returned: Int64, result: WriteResult)] = []
        var fencedIncrements: [FencedIncrement] = []
        var fencedIndeterminate = 0
        var fencedStale = 0
        var locksGranted = 0
        var lockStalls = 0
        var sessionReplies: [Int] = []
        var sessionIndeterminate = 0
        var sessionFailed = 0
        var steady = SteadyHolderTally()
    }

    let clock: HarnessClock
    private let state = Mutex(State())

    init(clock: HarnessClock) {
        self.clock = clock
    }

    func now() -> Int64 { clock.now() }

    func callRegister(client: Int, _ input: Registers.Input, at time: Int64) -> HistoryRecorder<Registers.Input, Registers.Output>.Call {
        state.withLock { $0.registers.call(clientID: client, input: input, at: time) }
    }

    func returnRegister(_ call: HistoryRecorder<Registers.Input, Registers.Output>.Call, _ output: Registers.Output, at time: Int64) {
        state.withLock { $0.registers.returned(call, output: output, at: time) }
    }

    func discardRegister(_ call: HistoryRecorder<Registers.Input, Registers.Output>.Call) {
        state.withLock { $0.registers.discard(call) }
    }

    func callFence(client: Int, _ input: LockModel.Input, at time: Int64) -> HistoryRecorder<LockModel.Input, LockModel.Output>.Call {
        state.withLock { $0.fences.call(clientID: client, input: input, at: time) }
    }

    func returnFence(_ call: HistoryRecorder<LockModel.Input, LockModel.Output>.Call, _ output: LockModel.Output, at time: Int64) {
        state.withLock { $0.fences.returned(call, output: output, at: time) }
    }

    func discardFence(_ call: HistoryRecorder<LockModel.Input, LockModel.Output>.Call) {
        state.withLock { $0.fences.discard(call) }
    }

    /// Notes a successful request of any kind at `time`.
    func success(at time: Int64) {
        state.withLock { $0.successes.append(time) }
    }

    /// Notes a write's result; a successful one also counts as a success.
    func write(called: Int64, returned: Int64, _ result: WriteResult) {
        state.withLock {
            $0.writes.append((called, returned, result))
            if case .ok = result { $0.successes.append(returned) }
        }
    }

    func update(_ body: (inout State) -> Void) {
        state.withLock { body(&$0) }
    }

    var snapshot: State { state.withLock { $0 } }
}
