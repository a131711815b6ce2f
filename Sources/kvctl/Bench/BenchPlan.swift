import KVProtocol
import NIOSSL

/// Every limit `kvctl bench` enforces on its options, by name.
enum BenchLimits {
    static let clientsMax = 4096
    static let pipelineMax = 1024
    static let sweepLevelsMax = 32
    static let keysMax = 100_000_000
    static let valueBytesMax = 1 << 20
    static let keyPrefixBytesMax = 1024
    static let rateMax = 10_000_000.0
    static let secondsMax = 86_400.0
    static let requestsMax = 1_000_000_000
    static let leaseTTLMax = 3600
    static let zipfThetaRange = 0.01...0.999_999
}

/// What each request (or lock cycle) does.
enum BenchWorkload: String, CaseIterable, Sendable {
    /// `SET key value`.
    case put
    /// `GET key`.
    case get
    /// `GET` with probability `--read-ratio`, else `SET`.
    case mixed
    /// kvd's `CAS key expected new`, expecting the value this client last saw.
    case cas
    /// One kvd lock cycle: `LEASE GRANT`, `LOCK name LEASE id WAIT ms`, `UNLOCK`, `LEASE REVOKE`.
    case lock

    /// Whether several requests of this workload can be in flight on one connection.
    var allowsPipelining: Bool { self != .lock }
}

/// How keys are picked among `--keys`.
enum BenchDistribution: String, CaseIterable, Sendable {
    case uniform
    case zipfian
}

/// When a run stops measuring.
enum BenchStop: Sendable, Equatable {
    case duration(seconds: Double)
    case requests(Int)
}

/// How requests are paced.
enum BenchPacing: Sendable, Equatable {
    /// Each connection sends its next request (or batch of `pipeline`) when the last answered.
    case closedLoop(pipeline: Int)
    /// Requests are due at a fixed total rate; latency counts from when each was due.
    case openLoop(rate: Double)
}

/// A validated benchmark: what to send, to whom, how hard and for how long. Built only by
/// `BenchPlan.validated`, so every value in it is within `BenchLimits`.
struct BenchPlan: Sendable {
    var endpoints: [KVEndpoint]
    var workload: BenchWorkload
    /// One level for a single run; several for a concurrency sweep (one run per level).
    var clientLevels: [Int]
    var pacing: BenchPacing
    var stop: BenchStop
    var warmupSeconds: Double
    var keys: Int
    var distribution: BenchDistribution
    var zipfTheta: Double
    var seed: UInt64
    var valueBytes: Int
    var keyPrefix: String
    var readRatio: Double
    var leaseTTLSeconds: Int
    var lockWaitMilliseconds: Int
    var requestTimeout: Duration
    var connectTimeout: Duration
    /// `AUTH` sent first on every connection, when the server needs it.
    var credentials: ClientCredentials? = nil
    /// With `--tls`: the TLS context every connection uses.
    var tls: NIOSSLContext? = nil

    var isSweep: Bool { clientLevels.count > 1 }
}

/// A bad option or a run that could not start: one line for the user, exit status 1 or 2.
enum BenchError: Error, Equatable, CustomStringConvertible {
    /// An option out of range or inconsistent with another.
    case invalidOption(String)
    /// No endpoint answered.
    case unreachable(String)
    /// The server lacks the commands a workload needs (e.g. redis-server and `lock`).
    case unsupported(String)
    /// An output file could not be written.
    case output(String)

    var description: String {
        switch self {
        case .invalidOption(let text), .unreachable(let text), .unsupported(let text), .output(let text): return text
        }
    }
}
