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
    ],
    targets: [
        // The Raft engine: a deterministic, I/O-free state machine. Standard library only.
        .target(name: "RaftCore", swiftSettings: strictSettings),
        // Test support: a seeded cluster simulator that runs real RaftCore nodes under
        // network, disk and crash faults and checks the Raft invariants after every event.
        .target(name: "RaftSimulation", dependencies: ["RaftCore"], swiftSettings: strictSettings),
        .testTarget(
            name: "RaftTests",
            dependencies: ["RaftCore", "RaftSimulation"],
            swiftSettings: strictSettings
        ),
    ]
)
