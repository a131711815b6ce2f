import KVProtocol
import Testing

/// KVClient's routing, retry and classification against scripted fake servers.
@Suite("KVClient redirects, retries and outcomes")
struct KVClientTests {
    @Test("-NOTLEADER with an address is followed at once, even to an unlisted endpoint")
    func followsRedirect() async throws {
        let leader = try await FakeServer.start { _, _ in .reply(.bulkString("v")) }
        let address = leader.endpoint.description
        let follower = try await FakeServer.start { _, _ in .reply(.error("NOTLEADER 2 \(address)")) }
        let client = makeClient([follower.endpoint])
        #expect(try await client.request(["GET", "k"], idempotent: true) == .bulkString("v"))
        #expect(follower.requests == [["GET", "k"]])
        #expect(leader.requests == [["GET", "k"]])
        // The leader is remembered: the next request goes straight to it.
        _ = try await client.request(["GET", "k"], idempotent: true)
        #expect(follower.requests.count == 1)
        await client.close()
    }

    @Test("asksForRedirects: each new connection sends CLIENT REDIRECT ON first; an error reply to it is ignored")
    func asksForRedirects() async throws {
        let leader = try await FakeServer.start { request, _ in
            request.first == "CLIENT" ? .reply(.error("ERR unknown subcommand 'REDIRECT'")) : .reply(.bulkString("v"))
        }
        let address = leader.endpoint.description
        let follower = try await FakeServer.start { request, _ in
            request.first == "CLIENT" ? .reply(.simpleString("OK")) : .reply(.error("NOTLEADER 2 \(address)"))
        }
        var configuration = KVClient.Configuration(endpoints: [follower.endpoint])
        configuration.asksForRedirects = true
        let client = KVClient(configuration: configuration)
        #expect(try await client.request(["GET", "k"], idempotent: true) == .bulkString("v"))
        #expect(try await client.request(["GET", "k"], idempotent: true) == .bulkString("v"))
        #expect(follower.requests == [["CLIENT", "REDIRECT", "ON"], ["GET", "k"]])
        #expect(leader.requests == [["CLIENT", "REDIRECT", "ON"], ["GET", "k"], ["GET", "k"]], "once per connection")
        await client.close()
    }

    @Test("-NOTLEADER unknown and a refused connection both move on to the next endpoint (definite)")
    func nextEndpoint() async throws {
        let leaderless = try await FakeServer.start { _, _ in .reply(.error("NOTLEADER unknown unknown")) }
        let leader = try await FakeServer.start { _, _ in .reply(.ok) }
        let dead = try await refusingEndpoint()  // after the servers: its freed port cannot become theirs
        let client = makeClient([dead, leaderless.endpoint, leader.endpoint])
        #expect(try await client.request(["SET", "k", "v"], idempotent: false) == .ok)
        #expect(leaderless.requests.count == 1)
        #expect(leader.requests.count == 1)
        await client.close()
    }

    @Test("only unreachable endpoints: the deadline passes with a definite error")
    func allUnreachable() async throws {
        let client = makeClient([try await refusingEndpoint()], timeout: .milliseconds(300))
        let error = await #expect(throws: KVClientError.self) { try await client.request(["SET", "k", "v"], idempotent: false) }
        #expect(error?.kind == .deadlineExceeded)
        #expect(error?.outcome == .definite)
    }

    @Test("nothingListeningGrace: every endpoint refusing connections ends the request long before its deadline")
    func nothingListening() async throws {
        var configuration = KVClient.Configuration(endpoints: [try await refusingEndpoint(), try await refusingEndpoint()])
        configuration.requestTimeout = .seconds(60)
        configuration.nothingListeningGrace = .milliseconds(200)
        let client = KVClient(configuration: configuration)
        let started = ContinuousClock.now
        let error = await #expect(throws: KVClientError.self) { try await client.request(["SET", "k", "v"], idempotent: false) }
        #expect(ContinuousClock.now - started < .seconds(30), "ended by the grace, not the 60 s deadline")
        #expect(error?.kind == .unreachable)
        #expect(error?.outcome == .definite)
        #expect(error?.message.hasPrefix("no node accepts connections (is the cluster running?): 0 of 2 nodes answered") == true)
        await client.close()
    }

    @Test("nothingListeningGrace: one endpoint answering keeps the request retrying until its deadline")
    func somethingListens() async throws {
        let leaderless = try await FakeServer.start { _, _ in .reply(.error("NOTLEADER unknown unknown")) }
        var configuration = KVClient.Configuration(endpoints: [try await refusingEndpoint(), leaderless.endpoint])
        configuration.requestTimeout = .milliseconds(600)
        configuration.nothingListeningGrace = .milliseconds(50)
        let client = KVClient(configuration: configuration)
        let error = await #expect(throws: KVClientError.self) { try await client.request(["SET", "k", "v"], idempotent: false) }
        #expect(error?.kind == .deadlineExceeded)
        #expect(leaderless.requests.count > 1, "retried the node that answers")
        await client.close()
    }

    @Test("-TIMEOUT on a non-idempotent request is indeterminate and not retried")
    func timeoutNotRetried() async throws {
        let server = try await FakeServer.start { _, _ in .reply(.error("TIMEOUT commit took too long")) }
        let client = makeClient([server.endpoint])
        let error = await #expect(throws: KVClientError.self) { try await client.request(["INCR", "n"], idempotent: false) }
        #expect(error?.code == "TIMEOUT")
        #expect(error?.outcome == .indeterminate)
        #expect(server.requests.count == 1)
        await client.close()
    }

    @Test("a connection closed after sending is indeterminate; garbage replies too")
    func closedMidRequest() async throws {
        let closing = try await FakeServer.start { _, _ in .close }
        let client = makeClient([closing.endpoint])
        let lost = await #expect(throws: KVClientError.self) { try await client.request(["INCR", "n"], idempotent: false) }
        #expect(lost?.kind == .connectionLost)
        #expect(lost?.outcome == .indeterminate)
        let garbling = try await FakeServer.start { _, _ in .garbage }
        let other = makeClient([garbling.endpoint])
        let garbled = await #expect(throws: KVClientError.self) { try await other.request(["INCR", "n"], idempotent: false) }
        #expect(garbled?.kind == .protocolViolation)
        #expect(garbled?.outcome == .indeterminate)
    }

    @Test("-ERR and -STALE are definite and final: one attempt, no retry")
    func definiteErrors() async throws {
        let server = try await FakeServer.start { request, _ in
            if request == ["SESSION", "REGISTER"] { return .reply(.integer(1)) }
            return .reply(.error(request.contains("FENCE") ? "STALE token 3 is below 5" : "ERR wrong number of arguments"))
        }
        let client = makeClient([server.endpoint])
        let error = await #expect(throws: KVClientError.self) { try await client.request(["GET"], idempotent: true) }
        #expect(error?.code == "ERR")
        #expect(error?.outcome == .definite)
        let stale = await #expect(throws: KVClientError.self) { try await client.write(["FENCE", "f", "3"]) }
        #expect(stale?.code == "STALE")
        #expect(stale?.outcome == .definite)
        #expect(server.requestsMatching("GET").count == 1)
        #expect(server.requests.filter { $0.contains("FENCE") }.count == 1)
        await client.close()
    }

    @Test("a session write retried after a lost connection and a -TIMEOUT reuses its sequence number")
    func sessionRetryReusesSeq() async throws {
        let server = try await FakeServer.start { request, index in
            if request == ["SESSION", "REGISTER"] { return .reply(.integer(42)) }
            // Attempts 2 and 3 of the first write fail indeterminately; then all succeed.
            switch index {
            case 1: return .close
            case 2: return .reply(.error("TIMEOUT no commit in time"))
            default: return .reply(.ok)
            }
        }
        let client = makeClient([server.endpoint])
        #expect(try await client.write(["SET", "k", "v"]) == .ok)
        #expect(try await client.write(["SET", "k", "w"]) == .ok)
        let writes = server.requestsMatching("SESSION").filter { $0[1] != "REGISTER" }
        #expect(writes.map { Array($0.prefix(3)) } == [
            ["SESSION", "42", "1"], ["SESSION", "42", "1"], ["SESSION", "42", "1"], ["SESSION", "42", "2"],
        ])
        #expect(writes[0].dropFirst(3) == ["SET", "k", "v"])
        #expect(server.requestsMatching("SESSION").filter { $0 == ["SESSION", "REGISTER"] }.count == 1)
        await client.close()
    }

    @Test("a session that expired before anything applied is registered again, with a fresh sequence")
    func sessionReRegisters() async throws {
        let registrations = Counter(values: [5, 9])
        let wrapped = try await FakeServer.start { request, _ in
            if request == ["SESSION", "REGISTER"] { return .reply(.integer(registrations.next())) }
            return request[1] == "5" ? .reply(.error("SESSIONEXPIRED 5")) : .reply(.integer(1))
        }
        let client = makeClient([wrapped.endpoint])
        #expect(try await client.write(["DEL", "k"]) == .integer(1))
        let writes = wrapped.requestsMatching("SESSION").filter { $0[1] != "REGISTER" }.map { Array($0.prefix(3)) }
        #expect(writes == [["SESSION", "5", "1"], ["SESSION", "9", "1"]])
        await client.close()
    }

    @Test("if every attempt of a session write is lost, the deadline error is indeterminate")
    func sessionDeadlineIndeterminate() async throws {
        let server = try await FakeServer.start { request, _ in
            request == ["SESSION", "REGISTER"] ? .reply(.integer(1)) : .close
        }
        // Long enough that the write is sent at least once even on a loaded machine (a deadline that
        // passes before anything is sent is, correctly, a definite failure).
        let client = makeClient([server.endpoint], timeout: .seconds(2))
        let error = await #expect(throws: KVClientError.self) { try await client.write(["SET", "k", "v"]) }
        #expect(error?.kind == .deadlineExceeded)
        #expect(error?.outcome == .indeterminate)
        let seqs = Set(server.requestsMatching("SESSION").filter { $0[1] != "REGISTER" }.map { $0[2] })
        #expect(seqs == ["1"])
        await client.close()
    }

    @Test("request(at:) asks exactly one node and returns its error reply without redirecting")
    func singleEndpoint() async throws {
        let other = try await FakeServer.start { _, _ in .reply(.ok) }
        let address = other.endpoint.description
        let follower = try await FakeServer.start { _, _ in .reply(.error("NOTLEADER 1 \(address)")) }
        let client = makeClient([follower.endpoint, other.endpoint])
        #expect(try await client.request(["INFO"], at: follower.endpoint) == .error("NOTLEADER 1 \(address)"))
        #expect(other.requests.isEmpty)
        await client.close()
    }

    @Test("endpoint lists parse host:port, IPv6 and bare ports, and name a bad entry")
    func endpointParsing() throws {
        #expect(try KVEndpoint.parseList("127.0.0.1:7001,7002, [::1]:7003") == [
            KVEndpoint(host: "127.0.0.1", port: 7001), KVEndpoint(host: "127.0.0.1", port: 7002),
            KVEndpoint(host: "::1", port: 7003),
        ])
        #expect(throws: KVClientError.self) { try KVEndpoint.parseList("localhost") }
        #expect(KVEndpoint("h:0") == nil)
    }
}

/// Hands out the given values in order (then repeats the last).
final class Counter: Sendable {
    private let state: Mutex<[Int64]>
    init(values: [Int64]) { state = Mutex(values) }
    func next() -> Int64 {
        state.withLock { values in values.count > 1 ? values.removeFirst() : values[0] }
    }
}

import Synchronization
