import KVProtocol
import Synchronization
import Testing

@testable import kvctl

/// Whole runs against a scripted in-process server: counts, not speeds.
@Suite struct BenchRunTests {
    static func plan(_ arguments: [String], at endpoints: [KVEndpoint]) throws -> BenchPlan {
        try BenchPlan.validated(Bench.parse(arguments + ["--warmup", "0"]).rawOptions, endpoints: endpoints)
    }

    static func run(_ plan: BenchPlan, clients: Int) async throws -> BenchRunResult {
        let chooser = KeyChooser(keys: plan.keys, distribution: plan.distribution, theta: plan.zipfTheta)
        let target = try await BenchTarget.discover(plan)
        return try await BenchRunner(plan: plan, target: target, chooser: chooser).run(clients: clients, level: 0)
    }

    static let keyValue: @Sendable ([String], Int) -> ScriptedAnswer = { request, _ in
        switch request.first?.uppercased() {
        case "SET": return .reply(.ok)
        case "GET": return .reply(.bulkString("value"))
        default: return .reply(.error("ERR unknown command '\(request.first ?? "")'"))
        }
    }

    @Test func closedLoopPipelinedCountsEveryRequest() async throws {
        let server = try await ScriptedServer.start(Self.keyValue)
        defer { Task { await server.stop() } }
        let plan = try Self.plan(["put", "--requests", "40", "--pipeline", "3", "--keys", "5"], at: [server.endpoint])
        let result = try await Self.run(plan, clients: 4)
        #expect(result.recorder.succeeded == 40)
        #expect(result.recorder.failures.isEmpty)
        let sets = server.requests.filter { $0.first == "SET" }
        #expect(sets.count == 40)
        // Every connection asks for redirects first, so a kvd follower sends it to the leader.
        #expect(server.requests.first == ["CLIENT", "REDIRECT", "ON"])
        #expect(server.requests.filter { $0.first == "CLIENT" }.count >= 4)
        #expect(sets.allSatisfy { $0.count == 3 && $0[1].hasPrefix("bench:") && $0[2].utf8.count == 100 })
        #expect(Set(sets.map { $0[1] }).isSubset(of: (0..<5).map { "bench:\($0)" }))
    }

    @Test func openLoopSendsEveryDueRequest() async throws {
        let server = try await ScriptedServer.start(Self.keyValue)
        defer { Task { await server.stop() } }
        let plan = try Self.plan(["get", "--requests", "30", "--rate", "3000"], at: [server.endpoint])
        let result = try await Self.run(plan, clients: 3)
        #expect(result.recorder.succeeded == 30)
        #expect(result.recorder.missed == 0)
        #expect(server.requests.filter { $0.first == "GET" }.count >= 30)
    }

    @Test func failuresAreCountedByKind() async throws {
        let server = try await ScriptedServer.start { request, index in
            guard request.first == "SET" else { return .reply(.nullBulkString) }
            switch index % 4 {
            case 0: return .reply(.error("TIMEOUT not committed in time"))
            case 1: return .reply(.error("ERR value too large"))
            case 2: return .hangUp
            default: return .reply(.ok)
            }
        }
        defer { Task { await server.stop() } }
        let plan = try Self.plan(["put", "--requests", "24"], at: [server.endpoint])
        let result = try await Self.run(plan, clients: 1)
        let recorder = result.recorder
        #expect(recorder.succeeded + recorder.definiteFailures + recorder.indeterminateFailures == 24)
        #expect(recorder.failures[BenchFailureKind(name: "TIMEOUT", indeterminate: true)] ?? 0 > 0)
        #expect(recorder.failures[BenchFailureKind(name: "ERR", indeterminate: false)] ?? 0 > 0)
        #expect(recorder.failures[BenchFailureKind(name: "connection lost", indeterminate: true)] ?? 0 > 0)
        #expect(recorder.succeeded > 0)
    }

    @Test func lostConnectionsAreReopenedAndCounted() async throws {
        let sets = SetCounter()
        let server = try await ScriptedServer.start { request, _ in
            guard request.first == "SET" else { return .reply(.nullBulkString) }
            return sets.next() < 5 ? .reply(.ok) : .hangUp
        }
        defer { Task { await server.stop() } }
        let plan = try Self.plan(["put", "--requests", "12"], at: [server.endpoint])
        let result = try await Self.run(plan, clients: 1)
        #expect(result.recorder.succeeded == 5)
        #expect(result.recorder.failures == [BenchFailureKind(name: "connection lost", indeterminate: true): 7])
    }

    @Test func followsNotLeaderToTheLeader() async throws {
        let leader = try await ScriptedServer.start(Self.keyValue)
        let follower = try await ScriptedServer.start { _, _ in
            .reply(.error("NOTLEADER 2 \(leader.endpoint)"))
        }
        defer { Task { await leader.stop(); await follower.stop() } }
        let plan = try Self.plan(["put", "--requests", "5"], at: [follower.endpoint])
        #expect(try await BenchTarget.discover(plan) == leader.endpoint)
        let result = try await Self.run(plan, clients: 2)
        #expect(result.recorder.succeeded == 5)
    }

    @Test func lockCycleSpeaksTheLockProtocol() async throws {
        let server = try await ScriptedServer.start { request, _ in
            switch request.prefix(2).joined(separator: " ").uppercased() {
            case "LEASE GRANT": return .reply(.integer(7))
            case "LEASE REVOKE": return .reply(.ok)
            default: break
            }
            switch request.first?.uppercased() {
            case "LOCK": return .reply(.integer(42))
            case "UNLOCK": return .reply(.ok)
            default: return .reply(.nullBulkString)
            }
        }
        defer { Task { await server.stop() } }
        let plan = try Self.plan(["lock", "--requests", "3", "--keys", "1", "--lease-ttl", "5"], at: [server.endpoint])
        try await BenchTarget.checkSupport(plan, at: server.endpoint)
        let result = try await Self.run(plan, clients: 1)
        #expect(result.recorder.succeeded == 3)
        let commands = server.requests.filter { $0.first != "GET" && $0.first != "CLIENT" }
        // The support check grants and revokes once; then three cycles of four requests.
        #expect(commands.count == 2 + 3 * 4)
        #expect(commands[2] == ["LEASE", "GRANT", "5"])
        #expect(commands[3] == ["LOCK", "bench:lock:0", "LEASE", "7", "WAIT", "2000"])
        #expect(commands[4] == ["UNLOCK", "bench:lock:0", "42"])
        #expect(commands[5] == ["LEASE", "REVOKE", "7"])
    }

    @Test func kvdExtensionsAreRefusedOnPlainRedis() async throws {
        let server = try await ScriptedServer.start(Self.keyValue)
        defer { Task { await server.stop() } }
        for workload in ["lock", "cas"] {
            let plan = try Self.plan([workload], at: [server.endpoint])
            await #expect(throws: BenchError.self) { try await BenchTarget.checkSupport(plan, at: server.endpoint) }
        }
    }

    @Test func unreachableServerIsAnErrorNotAHang() async throws {
        let server = try await ScriptedServer.start(Self.keyValue)
        let endpoint = server.endpoint
        await server.stop()
        let plan = try Self.plan(["put", "--connect-timeout", "1"], at: [endpoint])
        await #expect(throws: BenchError.self) { try await BenchTarget.discover(plan) }
    }
}

/// Counts the SETs a scripted server has seen, across its connections.
final class SetCounter: Sendable {
    private let count = Mutex(0)

    /// The number of SETs seen before this one.
    func next() -> Int {
        count.withLock { value in
            defer { value += 1 }
            return value
        }
    }
}
