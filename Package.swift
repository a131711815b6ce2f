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
        .testTarget(
            name: "RaftTests",
            dependencies: ["RaftCore", "RaftSimulation"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KVTests",
            dependencies: ["KVStore", "RaftCore", "RaftSimulation", "Linearizability"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LinearizabilityTests",
            dependencies: ["Linearizability"],
            swiftSettings: strictSettings
        ),
    ]
)
