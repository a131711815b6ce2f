@testable import KVDaemon
import KVStore
import Testing

/// Redis's string, key, expiry and transaction commands parse into the operations the state
/// machine applies, with Redis's own errors for bad options.
@Suite struct RedisCommandParserTests {
    func b(_ text: String) -> [UInt8] { Array(text.utf8) }
    func parse(_ words: String...) throws -> ClientCommand { try CommandParser.parse(words.map { Array($0.utf8) }) }
    func write(_ words: String...) throws -> KVOperation {
        guard case .write(let operation, nil, _) = try CommandParser.parse(words.map { Array($0.utf8) }) else {
            Issue.record("not a write: \(words)")
            return .flush
        }
        return operation
    }

    @Test func setWithRedisOptionsBecomesASetRequest() throws {
        #expect(try write("SET", "k", "v") == .put(key: b("k"), value: b("v"), condition: .always, lease: nil, fence: nil))
        #expect(try write("SET", "k", "v", "nx", "EX", "10", "GET")
            == .set(SetRequest(key: b("k"), value: b("v"), condition: .ifAbsent, expiry: .after(millis: 10_000), returnPrevious: true)))
        #expect(try write("SET", "k", "v", "PXAT", "1234") == .set(SetRequest(key: b("k"), value: b("v"), expiry: .at(unixMillis: 1234))))
        #expect(try write("SET", "k", "v", "KEEPTTL", "XX") == .set(SetRequest(key: b("k"), value: b("v"), condition: .ifPresent, expiry: .keep)))
        #expect(try write("SET", "k", "v", "IFEQ", "old") == .set(SetRequest(key: b("k"), value: b("v"), condition: .value(.equal(b("old"))))))
        #expect(throws: CommandError("syntax error")) { try parse("SET", "k", "v", "NX", "XX") }
        #expect(throws: CommandError("syntax error")) { try parse("SET", "k", "v", "EX", "1", "PX", "5") }
        #expect(throws: CommandError("syntax error")) { try parse("SET", "k", "v", "EX") }
        #expect(throws: CommandError("invalid expire time in 'set' command")) { try parse("SET", "k", "v", "EX", "0") }
        #expect(throws: CommandError("invalid expire time in 'set' command")) { try parse("SET", "k", "v", "EX", "9223372036854775807") }
        #expect(throws: CommandError.self) { try parse("SET", "k", "v", "LEASE", "5", "EX", "10") }
        #expect(throws: CommandError("invalid expire time in 'setex' command")) { try parse("SETEX", "k", "-1", "v") }
    }

    @Test func expireFamilyAndItsConditions() throws {
        #expect(try write("EXPIRE", "k", "10") == .expire(key: b("k"), at: .after(millis: 10_000), condition: .always))
        #expect(try write("PEXPIRE", "k", "-5", "gt") == .expire(key: b("k"), at: .after(millis: -5), condition: .ifLater))
        #expect(try write("EXPIREAT", "k", "100", "NX") == .expire(key: b("k"), at: .at(unixMillis: 100_000), condition: .ifNone))
        #expect(try write("PEXPIREAT", "k", "100", "LT") == .expire(key: b("k"), at: .at(unixMillis: 100), condition: .ifEarlier))
        #expect(throws: CommandError("Unsupported option FOO")) { try parse("EXPIRE", "k", "1", "FOO") }
        #expect(throws: CommandError("invalid expire time in 'expire' command")) { try parse("EXPIRE", "k", "9223372036854775807") }
        #expect(try parse("TTL", "k") == .read(.ttl(b("k"), .seconds)))
        #expect(try parse("PEXPIRETIME", "k") == .read(.ttl(b("k"), .unixMillis)))
        #expect(try write("GETEX", "k", "PX", "50") == .getEx(key: b("k"), change: .expire(.after(millis: 50))))
        #expect(try write("GETEX", "k", "persist") == .getEx(key: b("k"), change: .persist))
    }

    @Test func keyAndStringCommands() throws {
        #expect(try write("MSET", "a", "1", "b", "2") == .multiSet(pairs: [b("a"), b("1"), b("b"), b("2")], onlyIfNoneExist: false))
        #expect(throws: CommandError("wrong number of arguments for 'mset' command")) { try parse("MSET", "a", "1", "b") }
        #expect(try write("GETSET", "k", "v") == .set(SetRequest(key: b("k"), value: b("v"), returnPrevious: true)))
        #expect(try write("RENAMENX", "a", "b") == .rename(from: b("a"), to: b("b"), onlyIfAbsent: true))
        #expect(try write("COPY", "a", "b", "DB", "0", "REPLACE") == .copy(from: b("a"), to: b("b"), replace: true))
        #expect(throws: CommandError("DB index is out of range")) { try parse("COPY", "a", "b", "DB", "1") }
        #expect(try write("FLUSHALL", "ASYNC") == .flush)
        #expect(try write("UNLINK", "a", "b") == .delete(keys: [b("a"), b("b")], fence: nil))
        #expect(try write("DELIFEQ", "k", "v") == .deleteIf(key: b("k"), condition: .equal(b("v")), fence: nil))
        #expect(try write("DELEX", "k", "IFNE", "v") == .deleteIf(key: b("k"), condition: .notEqual(b("v")), fence: nil))
        #expect(throws: CommandError.self) { try parse("DELEX", "k", "IFDEQ", "abc") }
        #expect(try write("INCRBYFLOAT", "k", "-1.5e2") == .incrementFloat(key: b("k"), delta: -150, fence: nil))
        #expect(throws: CommandError("value is not a valid float")) { try parse("INCRBYFLOAT", "k", "nan") }
        #expect(throws: CommandError("offset is out of range")) { try parse("SETRANGE", "k", "-1", "v") }
        #expect(try parse("DBSIZE") == .read(.dbsize))
        #expect(try parse("KEYS", "a*") == .keys(pattern: b("a*")))
        #expect(try parse("WATCH", "a", "b") == .watch([b("a"), b("b")]))
        #expect(try parse("MULTI") == .connection(.multi))
        #expect(try parse("EXEC") == .connection(.exec(session: nil)))
        #expect(try parse("SESSION", "5", "2", "EXEC") == .connection(.exec(session: SessionStamp(clientID: 5, sequence: 2))))
        #expect(try parse("FENCED", "L", "3", "APPEND", "k", "v")
            == .write(.append(key: b("k"), value: b("v"), fence: FenceCondition(lock: b("L"), token: 3)), session: nil, reply: .standard))
    }

    @Test func scanParsesItsOptionsAndCapsTheCount() throws {
        #expect(try parse("SCAN", "0") == .scan(after: nil, pattern: nil, count: 10, type: nil))
        #expect(try parse("SCAN", "0", "MATCH", "a*", "COUNT", "1000000", "TYPE", "String")
            == .scan(after: nil, pattern: b("a*"), count: CommandParser.scanCountMax, type: "string"))
        #expect(throws: CommandError("invalid cursor")) { try parse("SCAN", "-1") }
        #expect(throws: CommandError("invalid cursor")) { try parse("SCAN", "2") }  // not a cursor kvd made
        #expect(throws: CommandError("syntax error")) { try parse("SCAN", "0", "COUNT", "0") }
    }

    @Test(arguments: ["", "a", "key:1", "\u{0}\u{0}x", String(repeating: "\u{FF}", count: 40)])
    func scanCursorsRoundTrip(key: String) throws {
        let bytes = Array(key.utf8)
        let cursor = ScanCursor.encode(bytes)
        #expect(cursor != "0")
        #expect(cursor.allSatisfy { $0.isNumber })
        #expect(try ScanCursor.decode(Array(cursor.utf8)) == bytes)
    }

    @Test func scanCursorsOfLongKeysStayWithinTheDigitLimit() throws {
        let longest = [UInt8](repeating: 0xFF, count: 1024)
        let cursor = ScanCursor.encode(longest)
        #expect(cursor.count <= ScanCursor.digitsMax)
        #expect(try ScanCursor.decode(Array(cursor.utf8)) == longest)
        #expect(try ScanCursor.decode(b("0")) == nil)
    }

    @Test(arguments: [
        ("a*", "abc", true), ("a*", "Abc", false), ("h?llo", "hello", true), ("h[ae]llo", "hallo", true),
        ("h[ae]llo", "hillo", false), ("h[^e]llo", "hallo", true), ("h[^e]llo", "hello", false), ("h[a-b]llo", "hbllo", true),
        ("*[*", "x[y", true), ("\\*", "*", true), ("\\*", "a", false), ("[", "[", true),
    ])
    func keyPatternsMatchAsInRedis(pattern: String, key: String, expected: Bool) {
        #expect(Glob.matches(Array(pattern.utf8), Array(key.utf8), ignoringCase: false) == expected)
    }

    @Test func theLiteralPrefixEndsAtTheFirstWildcard() {
        #expect(Glob.literalPrefix(b("user:*")) == b("user:"))
        #expect(Glob.literalPrefix(b("a\\*b?c")) == b("a*b"))
        #expect(Glob.literalPrefix(b("[ab]")) == [])
    }
}

/// `COMMAND COUNT` counts each command name once, and every name it counts parses.
@Suite struct CommandTableTests {
    @Test func commandNamesAreUniqueAndKnown() {
        #expect(Set(CommandParser.commandNames).count == CommandParser.commandNames.count)
        for name in CommandParser.commandNames {
            do {
                _ = try CommandParser.parse([Array(name.utf8)])
            } catch {
                #expect(!error.message.hasPrefix("unknown command"), "\(name) is counted but unknown")
            }
        }
    }
}
