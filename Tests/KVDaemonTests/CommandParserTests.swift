@testable import KVDaemon
import KVStore
import Testing

/// Client commands parse per docs/PROTOCOL.md; bad requests give definite `-ERR` messages.
@Suite struct CommandParserTests {
    func parse(_ words: String...) throws -> ClientCommand {
        try CommandParser.parse(words.map { Array($0.utf8) })
    }

    func b(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func commandNamesAreCaseInsensitive() throws {
        #expect(try parse("get", "k") == .read(.get(b("k"))))
        #expect(try parse("GeT", "k") == .read(.get(b("k"))))
        #expect(try parse("ping") == .ping(nil))
    }

    @Test func setOptions() throws {
        #expect(try parse("SET", "k", "v") == .write(.put(key: b("k"), value: b("v"), condition: .always, lease: nil, fence: nil), session: nil, reply: .standard))
        #expect(try parse("SET", "k", "v", "nx", "LEASE", "7") == .write(.put(key: b("k"), value: b("v"), condition: .ifAbsent, lease: 7, fence: nil), session: nil, reply: .standard))
        #expect(throws: CommandError.self) { try parse("SET", "k", "v", "NX", "XX") }
        #expect(throws: CommandError.self) { try parse("SET", "k", "v", "LEASE") }
        #expect(throws: CommandError.self) { try parse("SET", "k") }
    }

    @Test func countersAndOverflowEdges() throws {
        #expect(try parse("DECRBY", "n", "5") == .write(.increment(key: b("n"), delta: -5, fence: nil), session: nil, reply: .standard))
        #expect(throws: CommandError.self) { try parse("DECRBY", "n", "-9223372036854775808") }
        #expect(throws: CommandError.self) { try parse("INCRBY", "n", "1.5") }
        #expect(throws: CommandError.self) { try parse("INCRBY", "n", "99999999999999999999") }
    }

    @Test func casAndCasmod() throws {
        #expect(try parse("CAS", "k", "old", "new") == .write(.compareAndSwap(key: b("k"), expected: .value(b("old")), value: b("new"), fence: nil), session: nil, reply: .swapFlag))
        #expect(try parse("CASMOD", "k", "0", "new") == .write(.compareAndSwap(key: b("k"), expected: .absent, value: b("new"), fence: nil), session: nil, reply: .swapFlag))
        #expect(try parse("CASMOD", "k", "12", "new") == .write(.compareAndSwap(key: b("k"), expected: .modIndex(12), value: b("new"), fence: nil), session: nil, reply: .swapFlag))
    }

    @Test func fencedWrapsOnlyWrites() throws {
        #expect(try parse("FENCED", "deploy", "42", "SET", "k", "v") == .write(.put(key: b("k"), value: b("v"), condition: .always, lease: nil, fence: FenceCondition(lock: b("deploy"), token: 42)), session: nil, reply: .standard))
        #expect(try parse("FENCED", "deploy", "42", "DEL", "a", "b") == .write(.delete(keys: [b("a"), b("b")], fence: FenceCondition(lock: b("deploy"), token: 42)), session: nil, reply: .standard))
        #expect(throws: CommandError.self) { try parse("FENCED", "deploy", "42", "GET", "k") }
        #expect(throws: CommandError.self) { try parse("FENCED", "deploy", "x", "SET", "k", "v") }
        #expect(throws: CommandError.self) { try parse("FENCED", "a", "1", "FENCED", "b", "2", "SET", "k", "v") }
    }

    @Test func sessionsWrapWritesAndLocks() throws {
        #expect(try parse("SESSION", "REGISTER") == .write(.sessionRegister, session: nil, reply: .standard))
        let stamp = SessionStamp(clientID: 9, sequence: 3)
        #expect(try parse("SESSION", "9", "3", "INCR", "n") == .write(.increment(key: b("n"), delta: 1, fence: nil), session: stamp, reply: .standard))
        #expect(try parse("SESSION", "9", "3", "LOCK", "l", "LEASE", "5", "WAIT", "100") == .lock(name: b("l"), leaseID: 5, waitMillis: 100, session: stamp))
        #expect(try parse("SESSION", "9", "3", "LEASE", "KEEPALIVE", "5") == .write(.leaseKeepAlive(leaseID: 5), session: stamp, reply: .ttlSeconds))
        #expect(throws: CommandError.self) { try parse("SESSION", "9", "0", "INCR", "n") }
        #expect(throws: CommandError.self) { try parse("SESSION", "9", "1", "GET", "n") }
        #expect(throws: CommandError.self) { try parse("SESSION", "9", "1", "LEASE", "TTL", "5") }
    }

    @Test func leasesAndLocks() throws {
        #expect(try parse("LEASE", "GRANT", "1.5") == .write(.leaseGrant(ttlMillis: 1500), session: nil, reply: .standard))
        #expect(throws: CommandError.self) { try parse("LEASE", "GRANT", "0") }
        #expect(throws: CommandError.self) { try parse("LEASE", "GRANT", "nan") }
        #expect(try parse("LEASE", "TTL", "4") == .leaseTTL(4))
        #expect(try parse("LOCK", "l", "LEASE", "4") == .lock(name: b("l"), leaseID: 4, waitMillis: nil, session: nil))
        #expect(throws: CommandError.self) { try parse("LOCK", "l", "4") }
        #expect(try parse("UNLOCK", "l", "17") == .write(.lockRelease(name: b("l"), token: 17), session: nil, reply: .standard))
        #expect(try parse("OWNER", "l") == .owner(b("l")))
    }

    @Test func readsAndUtilities() throws {
        #expect(try parse("LIST", "app/") == .list(prefix: b("app/"), limit: CommandParser.defaultListLimit))
        #expect(try parse("LIST", "app/", "limit", "5") == .list(prefix: b("app/"), limit: 5))
        #expect(throws: CommandError.self) { try parse("LIST", "app/", "5") }
        #expect(try parse("MGET", "a", "b") == .read(.mget([b("a"), b("b")])))
        #expect(try parse("CONFIG", "GET", "save", "app*") == .connection(.configGet([b("save"), b("app*")])))
        #expect(throws: CommandError.self) { try parse("CONFIG", "SET", "save", "") }
        #expect(throws: CommandError.self) { try parse("CONFIG", "GET") }
        #expect(try parse("COMMAND", "COUNT") == .connection(.commandCount))
        #expect(try parse("INFO") == .info(sections: []))
        #expect(try parse("STRLEN", "k") == .read(.strlen(b("k"))))
        #expect(try parse("GETRANGE", "k", "-3", "7") == .read(.getRange(b("k"), start: -3, end: 7)))
        #expect(throws: CommandError.self) { try parse("GETRANGE", "k", "x", "7") }
        #expect(try parse("TYPE", "k") == .read(.type(b("k"))))
        #expect(
            try parse("SETNX", "k", "v")
                == .write(.put(key: b("k"), value: b("v"), condition: .ifAbsent, lease: nil, fence: nil), session: nil, reply: .setFlag))
        #expect(try parse("info", "Server", "KVD") == .info(sections: ["server", "kvd"]))
        #expect(try parse("COMMAND", "DOCS", "get") == .emptyArray)
        #expect(try parse("LEADER", "TRANSFER", "2") == .transferLeadership(2))
        #expect(try parse("READONLY") == .readOnly(true))
    }

    @Test func unknownAndEmptyCommandsAreDefiniteErrors() throws {
        #expect(throws: CommandError.self) { try CommandParser.parse([]) }
        #expect(throws: CommandError("unknown command 'LPUSH'")) { try parse("LPUSH", "l", "x") }
        #expect(throws: CommandError.self) { try parse("GET") }
        #expect(throws: CommandError.self) { try parse("GET", "a", "b") }
    }

    @Test func repliesCarryTheirErrorCodes() {
        #expect(Reply.notLeader(nil, address: nil) == .error("NOTLEADER unknown unknown"))
        #expect(Reply.notLeader(2, address: "127.0.0.1:7002") == .error("NOTLEADER 2 127.0.0.1:7002"))
        #expect(Reply.from(.error(.stale("lock l is not held with token 3")), style: .standard) == .error("STALE lock l is not held with token 3"))
        #expect(Reply.from(.lockBusy(holderToken: 9), style: .standard) == .error("LOCKED 9"))
        #expect(Reply.from(.error(.sessionExpired(4)), style: .standard) == .error("SESSIONEXPIRED session 4 expired; register a new session"))
        #expect(Reply.from(.swapped(false, modIndex: 3), style: .swapFlag) == .integer(0))
        #expect(Reply.from(.leaseRenewed(ttlMillis: 1500), style: .ttlSeconds) == .integer(2))
    }

    @Test func latencyIsFiledUnderTheInnerCommand() {
        #expect(ClientServer.metricName([b("SESSION"), b("1"), b("2"), b("SET"), b("k"), b("v")]) == "set")
        #expect(ClientServer.metricName([b("session"), b("register")]) == "session")
        #expect(ClientServer.metricName([b("SESSION"), b("1"), b("2"), b("FENCED"), b("l"), b("3"), b("INCR"), b("k")]) == "incr")
        #expect(ClientServer.metricName([b("get"), b("k")]) == "get")
    }
}

/// `GETRANGE` by Redis's rules (examples from its documentation and the edges around them).
@Suite struct GetRangeTests {
    @Test(arguments: [
        (0, 3, "This"), (-3, -1, "ing"), (0, -1, "This is a string"), (10, 100, "string"), (5, 2, ""),
        (-100, 3, "This"), (-100, -100, "T"), (16, 20, ""), (0, 0, "T"),
    ] as [(Int64, Int64, String)])
    func redisExamples(start: Int64, end: Int64, expected: String) {
        #expect(KVStateMachine.range(of: Array("This is a string".utf8), start: start, end: end) == Array(expected.utf8))
    }

    @Test func emptyValue() {
        #expect(KVStateMachine.range(of: [], start: 0, end: -1).isEmpty)
    }
}
