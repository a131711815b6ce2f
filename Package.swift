// swift-tools-version: 6.1
import PackageDescription

/// Strict settings for every target: Swift 6 language mode is implied by the tools version;
/// these make existential types and import visibility explicit.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "kvd",
    products: [
        .library(name: "RaftCore", targets: ["RaftCore"]),
        .library(name: "KVStore", targets: ["KVStore"]),
        .library(name: "KVProtocol", targets: ["KVProtocol"]),
        .executable(name: "kvd", targets: ["kvd"]),
        .executable(name: "kvctl", targets: ["kvctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
    ],
    targets: [
        // The Raft engine: a deterministic, I/O-free state machine. Standard library only.
        .target(name: "RaftCore", swiftSettings: strictSettings),
        // The system SQLite (Debian's libsqlite3-dev), found through pkg-config.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // Durable Raft log storage in SQLite and the replicated KV/lease/lock/fence/session state machine.
        .target(name: "KVStore", dependencies: ["RaftCore", "CSQLite"], swiftSettings: strictSettings),
        // Test support: a seeded cluster simulator that runs real RaftCore nodes under
        // network, disk and crash faults and checks the Raft invariants after every event.
        .target(name: "RaftSimulation", dependencies: ["RaftCore"], swiftSettings: strictSettings),
        // Test support: a linearizability checker (Wing–Gong / Porcupine) shared by simulation
        // tests and the real-process fault harness.
        .target(name: "Linearizability", swiftSettings: strictSettings),
        // Runs the Raft simulation from the command line: many seeds fast in release builds,
        // one seed with a trace, and a no-I/O throughput figure for a simulated cluster.
        .executableTarget(name: "raft-sim", dependencies: ["RaftCore", "RaftSimulation"], swiftSettings: strictSettings),
        // Measures fsync'd Raft log persistence in SQLite beside the raw fdatasync rate; also the
        // writer child process of the SIGKILL crash tests.
        .executableTarget(name: "kvd-storage-bench", dependencies: ["KVStore", "RaftCore"], swiftSettings: strictSettings),
        // The client side shared by kvctl, tests and benchmarks: RESP2 values and codecs (also used
        // by the server) and an async client that follows -NOTLEADER across endpoints.
        .target(
            name: "KVProtocol",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Passwords (salted PBKDF2-SHA256 hashes, checked in constant time) and the peers'
        // challenge-response (HMAC-SHA256), shared by the daemon and kvctl.
        .target(
            name: "KVAuth",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The daemon: configuration, peer transport, the Raft loop, the RESP2 client server,
        // lease expiry, metrics and graceful shutdown. A library so that tests can drive it.
        .target(
            name: "KVDaemon",
            dependencies: [
                "RaftCore", "KVStore", "KVProtocol", "KVAuth",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "kvd",
            dependencies: ["KVDaemon", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        // The real-process network fault harness: kvd nodes in network namespaces, partitions by
        // firewall rules, kill -9 and SIGSTOP, workloads checked for linearizability (docs/FAULTS.md).
        .executableTarget(
            name: "kvd-faults",
            dependencies: [
                "KVProtocol", "Linearizability",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        // kvctl, including `kvctl bench`: the load tester (HDR histograms, pipelined RESP
        // connections of its own, the Universal Scalability Law fit, SVG plots).
        .executableTarget(
            name: "kvctl",
            dependencies: [
                "KVProtocol",
                "KVStore",
                "KVAuth",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strictSettings
        ),
        // `kvctl bench`'s pure parts (USL fit, key distributions, open-loop accounting, option
        // validation, SVG) and its client against an in-process RESP server.
        .testTarget(
            name: "BenchTests",
            dependencies: ["kvctl", "KVProtocol", .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KVProtocolTests",
            dependencies: [
                "KVProtocol",
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KVDaemonTests",
            dependencies: [
                "KVDaemon", "KVProtocol", "RaftCore", "KVStore", "KVAuth", .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Real kvd processes on loopback (ports chosen free at run time), driven by kvctl and
        // redis-cli: the walkthrough, failover, locks with fencing, protocol edge cases.
        .testTarget(
            name: "ClusterTests",
            dependencies: ["KVProtocol", "KVAuth"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "RaftTests",
            dependencies: ["RaftCore", "RaftSimulation"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KVTests",
            dependencies: ["KVStore", "RaftCore", "RaftSimulation", "Linearizability", "KVDaemon"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LinearizabilityTests",
            dependencies: ["Linearizability"],
            swiftSettings: strictSettings
        ),
    ]
)

// libFuzzer targets (docs/FUZZING.md), declared only when scripts/fuzz.sh sets KVD_FUZZ=1 (it
// builds them with -sanitize=fuzzer in a build directory of their own), so that the ordinary
// `swift build --build-tests` neither sees nor compiles them.
if Context.environment["KVD_FUZZ"] == "1" {
    let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
        ("fuzz-resp-request", ["KVProtocol", "KVDaemon"]),
        ("fuzz-resp-reply", ["KVProtocol"]),
        ("fuzz-peer-wire", ["KVDaemon", "RaftCore"]),
        ("fuzz-backup", ["KVStore", "RaftCore"]),
        ("fuzz-config", ["KVDaemon"]),
    ]
    package.targets.append(
        .target(
            name: "FuzzSupport",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/Sources/FuzzSupport",
            swiftSettings: strictSettings))
    for (name, dependencies) in fuzzTargets {
        package.targets.append(
            .executableTarget(
                name: name,
                dependencies: dependencies + ["FuzzSupport", .product(name: "NIOCore", package: "swift-nio")],
                path: "Fuzz/Sources/\(name)",
                swiftSettings: strictSettings))
        package.products.append(.executable(name: name, targets: [name]))
    }
}
