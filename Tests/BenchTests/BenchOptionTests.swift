import ArgumentParser
import KVProtocol
import Testing

@testable import kvctl

@Suite struct BenchOptionTests {
    static let endpoint = [KVEndpoint(host: "127.0.0.1", port: 7001)]

    func plan(_ arguments: [String]) throws -> BenchPlan {
        let command = try Bench.parse(arguments)
        return try BenchPlan.validated(command.rawOptions, endpoints: Self.endpoint)
    }

    @Test func defaults() throws {
        let plan = try plan(["put"])
        #expect(plan.workload == .put)
        #expect(plan.clientLevels == [16])
        #expect(plan.pacing == .closedLoop(pipeline: 1))
        #expect(plan.stop == .duration(seconds: 10))
        #expect(!plan.isSweep)
    }

    @Test func clientLevels() throws {
        #expect(try BenchPlan.parseClientLevels("1..256") == [1, 2, 4, 8, 16, 32, 64, 128, 256])
        #expect(try BenchPlan.parseClientLevels("1..100") == [1, 2, 4, 8, 16, 32, 64, 100])
        #expect(try BenchPlan.parseClientLevels("3") == [3])
        #expect(try BenchPlan.parseClientLevels("1, 2,8") == [1, 2, 8])
        #expect(try plan(["get", "--clients", "1,2,4"]).isSweep)
    }

    @Test(arguments: [
        ["put", "--clients", "0"],
        ["put", "--clients", "-3"],
        ["put", "--clients", "1,0"],
        ["put", "--clients", "4,2"],
        ["put", "--clients", "2,2"],
        ["put", "--clients", "abc"],
        ["put", "--clients", "8..2"],
        ["put", "--clients", "1..999999"],
        ["put", "--clients", ""],
        ["put", "--rate", "0"],
        ["put", "--rate=-5"],
        ["put", "--rate", "inf"],
        ["put", "--rate", "nan"],
        ["put", "--rate", "100", "--pipeline", "4"],
        ["put", "--pipeline", "0"],
        ["lock", "--pipeline", "2"],
        ["put", "--duration", "0"],
        ["put", "--duration", "1", "--requests", "10"],
        ["put", "--requests", "0"],
        ["put", "--warmup=-1"],
        ["put", "--keys", "0"],
        ["put", "--value-bytes", "2000000"],
        ["mixed", "--read-ratio", "1.5"],
        ["put", "--distribution", "zipfian", "--zipf-theta", "1"],
        ["put", "--timeout", "0"],
        ["put", "--connect-timeout", "nan"],
        ["lock", "--lease-ttl", "0"],
    ])
    func rejects(_ arguments: [String]) {
        #expect(throws: (any Error).self) { try plan(arguments) }
    }

    @Test func validationErrorsAreOneLine() {
        do {
            _ = try BenchPlan.validated(BenchRawOptions(clients: "0"), endpoints: Self.endpoint)
            Issue.record("zero clients accepted")
        } catch {
            #expect(error == .invalidOption("--clients must be at least 1, got 0"))
            #expect(!error.description.contains("\n"))
        }
    }

    @Test func unknownWorkloadIsAParseError() {
        #expect(throws: (any Error).self) { try Bench.parse(["scan"]) }
        #expect(throws: (any Error).self) { try Bench.parse(["put", "--distribution", "pareto"]) }
    }

    @Test func svgNeedsASweep() {
        #expect(throws: (any Error).self) { try Bench.parse(["put", "--svg", "/tmp/x.svg"]) }
        #expect(throws: Never.self) { try Bench.parse(["put", "--clients", "1,2", "--svg", "/tmp/x.svg"]) }
    }

    @Test func openLoopAndRequests() throws {
        let plan = try plan(["get", "--rate", "2500", "--requests", "1000", "--warmup", "0"])
        #expect(plan.pacing == .openLoop(rate: 2500))
        #expect(plan.stop == .requests(1000))
        #expect(plan.warmupSeconds == 0)
    }
}
