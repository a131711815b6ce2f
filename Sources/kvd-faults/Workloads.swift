import KVProtocol
import Synchronization

/// Tells the workload loops to stop after their current operation.
final class StopFlag: Sendable {
    private let stopped = Mutex(false)
    var isSet: Bool { stopped.withLock { $0 } }
    func set() { stopped.withLock { $0 = true } }
}

/// What every workload client shares: where the nodes are, the recorder and the stop flag.
struct WorkloadContext: Sendable {
    let endpoints: [KVEndpoint]
    let recorder: Recorder
    let stop: StopFlag
    let seed: UInt64

    /// A client that tries the nodes starting at a different one per client, so that requests
    /// arrive at every node, not only the first.
    func makeClient(_ clientID: Int) -> KVClient {
        let offset = clientID % endpoints.count
        var configuration = KVClient.Configuration(endpoints: Array(endpoints[offset...] + endpoints[..<offset]))
        configuration.requestTimeout = Limits.requestTimeout
        configuration.attemptTimeout = Limits.attemptTimeout
        configuration.connectTimeout = Limits.attemptTimeout
        return KVClient(configuration: configuration)
    }

    /// The random source of one client, derived from the run's seed.
    func generator(_ clientID: Int) -> SeededGenerator {
        SeededGenerator(seed: seed &+ 0x9E37_79B9 &* UInt64(clientID + 1))
    }
}

/// Client ids: each workload has its own range, so histories say which workload a client runs.
enum ClientIDs {
    static let registers = 100
    static let locks = 200
    static let sessions = 300
    static let steady = 400
    static let negativeControl = 900
    static let final = 999
}

func pause(millis range: ClosedRange<Int>, _ generator: inout SeededGenerator) async {
    try? await Task.sleep(for: .milliseconds(Int.random(in: range, using: &generator)))
}

extension RESPValue {
    /// The integer of an `:n` reply or of a bulk string holding digits (GET of a counter).
    var integerValue: Int? {
        switch self {
        case .integer(let value): Int(value)
        case .bulkString: text.flatMap { Int($0) }
        default: nil
        }
    }
}
