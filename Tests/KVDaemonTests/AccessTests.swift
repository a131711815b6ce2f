import KVAuth
import KVStore
import Testing

@testable import KVDaemon

/// Password hashes, the users file, `requirepass`, and what each command needs of a user.
@Suite struct AccessTests {
    static let hash = (try? PasswordHash.make(password: Array("secret".utf8)))?.description ?? ""

    @Test("a password hash matches its password only, survives its text form, and refuses malformed text")
    func passwordHash() throws {
        let made = try PasswordHash.make(password: Array("secret".utf8))
        let parsed = try PasswordHash(parsing: made.description)
        #expect(parsed == made)
        #expect(parsed.matches(Array("secret".utf8)))
        #expect(!parsed.matches(Array("Secret".utf8)))
        #expect(!parsed.matches([]))
        let again = try PasswordHash.make(password: Array("secret".utf8))
        #expect(again.salt != made.salt && again.digest != made.digest, "a fresh salt per hash")
        #expect(throws: PasswordHashError.format) { try PasswordHash(parsing: "secret") }
        #expect(throws: PasswordHashError.format) { try PasswordHash(parsing: "md5$210000$00$00") }
        #expect(throws: PasswordHashError.rounds(1000)) {
            try PasswordHash(parsing: "pbkdf2-sha256$1000$\(Hex.encode(made.salt))$\(Hex.encode(made.digest))")
        }
        #expect(throws: PasswordHashError.format) { try PasswordHash(parsing: "pbkdf2-sha256$210000$zz$\(Hex.encode(made.digest))") }
        #expect(constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEqual([1, 2], [1, 2, 3]))
    }

    @Test("the users file: rules, comments, and one clear error per bad line")
    func usersFile() throws {
        let users = try UserDirectory.parse(
            """
            # comment
            user app \(Self.hash) +read +write ~app:* ~shared:*
            user ops \(Self.hash) +all ~*   # trailing comment
            """, file: "users.conf")
        #expect(users.map(\.name) == ["app", "ops"])
        #expect(users[0].permissions == [.read, .write])
        #expect(users[0].keyPatterns == [Array("app:*".utf8), Array("shared:*".utf8)])
        #expect(users[1].permissions == .all && users[1].allNames)
        func error(_ text: String) -> String? {
            do {
                _ = try UserDirectory.parse(text, file: "users.conf")
                return nil
            } catch {
                return error.description
            }
        }
        #expect(error("user a \(Self.hash) +read\nuser a \(Self.hash)")?.contains("users.conf:2: duplicate user 'a' (first defined on line 1)") == true)
        #expect(error("user a \(Self.hash) +fly")?.contains("unknown rule '+fly'") == true)
        #expect(error("user a plain-password")?.contains("not a password hash") == true)
        #expect(error("user a")?.contains("needs a name and a password hash") == true)
        #expect(error("user bad/name \(Self.hash)")?.contains("user name 'bad/name'") == true)
        #expect(error("person a \(Self.hash)")?.contains("expected 'user NAME HASH RULE...'") == true)
        #expect(error("user a \(Self.hash) ~")?.contains("empty key pattern") == true)
    }

    @Test("requirepass makes the default user with every permission; a bad hash names its line; CONFIG GET never shows it")
    func requirePass() throws {
        let config = try ClusterConfig.parse("requirepass \(Self.hash)\nnode 1 peer=127.0.0.1:1 client=127.0.0.1:2\n", file: "c.conf")
        let directory = try UserDirectory.load(settings: config.settings, configFile: "c.conf")
        #expect(directory.user(named: "default")?.permissions == .all)
        #expect(!config.settings.parameters.contains { $0.name == "requirepass" || $0.value.contains("pbkdf2") })
        #expect(throws: ConfigError(file: "c.conf", line: 1, message: "requirepass: \(PasswordHashError.format)")) {
            try ClusterConfig.parse("requirepass hunter2\nnode 1 peer=127.0.0.1:1 client=127.0.0.1:2\n", file: "c.conf")
        }
        #expect(throws: ConfigError.self) {
            let config = try ClusterConfig.parse("users-file /nonexistent/users\nnode 1 peer=127.0.0.1:1 client=127.0.0.1:2\n", file: "c.conf")
            _ = try UserDirectory.load(settings: config.settings, configFile: "c.conf")
        }
    }

    static func need(_ words: [String]) throws -> AccessNeed {
        try CommandParser.parse(words.map { Array($0.utf8) }).accessNeed
    }

    @Test("each command needs its category and names every key and lock it touches")
    func needs() throws {
        #expect(try Self.need(["GET", "k"]) == AccessNeed(permission: .read, names: [Array("k".utf8)]))
        #expect(try Self.need(["SET", "k", "v"]) == AccessNeed(permission: .write, names: [Array("k".utf8)]))
        #expect(try Self.need(["MSET", "a", "1", "b", "2"]).names == [Array("a".utf8), Array("b".utf8)])
        #expect(try Self.need(["RENAME", "a", "b"]).names == [Array("a".utf8), Array("b".utf8)])
        #expect(try Self.need(["FENCED", "L", "3", "SET", "k", "v"]).names == [Array("k".utf8), Array("L".utf8)])
        #expect(try Self.need(["SESSION", "1", "1", "SET", "k", "v"]).permission == .write)
        #expect(try Self.need(["LOCK", "L", "LEASE", "1"]) == AccessNeed(permission: .locks, names: [Array("L".utf8)]))
        #expect(try Self.need(["LEASE", "GRANT", "10"]).permission == .locks)
        #expect(try Self.need(["SESSION", "REGISTER"]) == .none)
        #expect(try Self.need(["KEYS", "*"]).everyName)
        #expect(try Self.need(["SCAN", "0"]).everyName)
        #expect(try Self.need(["FLUSHALL"]).permission == .admin)
        #expect(try Self.need(["MEMBER", "REMOVE", "3"]).permission == .admin)
        #expect(try Self.need(["MEMBER", "LIST"]) == .none)
        #expect(try Self.need(["SNAPSHOT", "BEGIN"]).permission == .admin)
        #expect(try Self.need(["LEADER", "TRANSFER", "2"]).permission == .admin)
        #expect(try Self.need(["INFO"]) == .none)
        #expect(try Self.need(["PING"]) == .none)
    }

    @Test("a user is refused a category it lacks, a key outside its patterns, and a command reaching every key without ~*")
    func denials() throws {
        let hash = try PasswordHash(parsing: Self.hash)
        let app = User(name: "app", passwordHash: hash, permissions: [.read, .write], keyPatterns: [Array("app:*".utf8)])
        #expect(app.denial(try Self.need(["SET", "app:1", "v"]), command: "set") == nil)
        #expect(app.denial(try Self.need(["SET", "other", "v"]), command: "set") == "NOPERM No permissions to access a key")
        #expect(app.denial(try Self.need(["LOCK", "app:l", "LEASE", "1"]), command: "lock")
            == "NOPERM User app has no permissions to run the 'lock' command")
        #expect(app.denial(try Self.need(["KEYS", "app:*"]), command: "keys")?.hasPrefix("NOPERM User app has no permissions to access every key") == true)
        #expect(app.denial(try Self.need(["PING"]), command: "ping") == nil)
    }
}
