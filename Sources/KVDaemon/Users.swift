public import KVAuth

/// What a user may do, by category (docs/SECURITY.md, "Permissions").
public struct Permissions: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Reads of keys: `GET`, `MGET`, `EXISTS`, `TTL`, `SCAN`, `KEYS`, `WATCH`, ...
    public static let read = Permissions(rawValue: 1 << 0)
    /// Writes of keys: `SET`, `DEL`, `INCR`, `EXPIRE`, `RENAME`, transactions, fenced writes, ...
    public static let write = Permissions(rawValue: 1 << 1)
    /// Leases, locks and fence registers: `LEASE`, `LOCK`, `UNLOCK`, `FENCE`.
    public static let locks = Permissions(rawValue: 1 << 2)
    /// The cluster itself: `MEMBER` changes, `LEADER TRANSFER`, `SNAPSHOT` (backups),
    /// `FLUSHDB`/`FLUSHALL`.
    public static let admin = Permissions(rawValue: 1 << 3)
    public static let all: Permissions = [.read, .write, .locks, .admin]

    /// The categories by their names in a users file.
    static let named: [(name: String, permissions: Permissions)] = [
        ("read", .read), ("write", .write), ("locks", .locks), ("admin", .admin), ("all", .all),
    ]

    /// `read,write` for messages.
    var names: String {
        Self.named.filter { $0.name != "all" && contains($0.permissions) }.map(\.name).joined(separator: ",")
    }
}

/// One user: a name, the hash of its password, its permissions and the key patterns it may
/// touch (Redis ACL `~pattern` globs, matched against keys and lock and fence names).
public struct User: Hashable, Sendable {
    public var name: String
    public var passwordHash: PasswordHash
    public var permissions: Permissions
    public var keyPatterns: [[UInt8]]

    /// Whether the user may touch every name (a pattern `*`).
    var allNames: Bool { keyPatterns.contains([UInt8(ascii: "*")]) }

    /// Whether the user may touch `name`.
    func mayTouch(_ name: [UInt8]) -> Bool {
        keyPatterns.contains { Glob.matches($0, name) }
    }
}

/// The users of a node: from `requirepass` (the `default` user) and the `users-file`.
/// Empty means authentication is off: every connection may run every command.
public struct UserDirectory: Hashable, Sendable {
    public static let defaultUser = "default"
    /// Most users a file may define, and the longest name.
    public static let usersMax = 10_000
    public static let nameBytesMax = 64
    /// Most bytes of a users file.
    public static let fileBytesMax = 4 << 20

    public private(set) var users: [String: User] = [:]

    public var isEnabled: Bool { !users.isEmpty }

    public init() {}

    public init(users: [User]) {
        for user in users { self.users[user.name] = user }
    }

    public func user(named name: String) -> User? { users[name] }

    /// The directory a configuration describes: `requirepass`, and the users file (a relative
    /// path is taken from the configuration file's folder).
    public static func load(settings: ClusterSettings, configFile: String) throws(ConfigError) -> UserDirectory {
        var directory = UserDirectory()
        if let requirePass = settings.requirePass {
            do {
                let hash = try PasswordHash(parsing: requirePass)
                directory.users[defaultUser] = User(name: defaultUser, passwordHash: hash, permissions: .all, keyPatterns: [Array("*".utf8)])
            } catch {
                throw ConfigError(file: configFile, line: nil, message: "requirepass: \(error)")
            }
        }
        guard let usersFile = settings.usersFile else { return directory }
        let path = resolve(usersFile, besides: configFile)
        let text: String
        do {
            text = try readTextFile(path: path, bytesMax: fileBytesMax)
        } catch {
            throw ConfigError(file: path, line: nil, message: error.reason)
        }
        for user in try parse(text, file: path) {
            if directory.users[user.name] != nil {
                throw ConfigError(file: path, line: nil, message: "user '\(user.name)' is also defined by requirepass in \(configFile)")
            }
            directory.users[user.name] = user
        }
        return directory
    }

    /// `path` as written in the configuration file `configFile`: a relative path is taken from
    /// that file's folder.
    static func resolve(_ path: String, besides configFile: String) -> String {
        guard !path.hasPrefix("/"), let slash = configFile.lastIndex(of: "/") else { return path }
        return String(configFile[...slash]) + path
    }

    /// Parses a users file: one `user NAME HASH RULE...` per line, `#` comments; a rule is
    /// `+read`, `+write`, `+locks`, `+admin`, `+all` or `~PATTERN`.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> [User] {
        var users: [User] = []
        var lines: [String: Int] = [:]
        for (offset, rawLine) in ClusterConfig.lines(of: text).enumerated() {
            let number = offset + 1
            func fail(_ message: String) -> ConfigError { ConfigError(file: file, line: number, message: message) }
            let content = rawLine.prefix { $0 != "#" }
            let words = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let first = words.first else { continue }
            guard first == "user" else { throw fail("expected 'user NAME HASH RULE...', found '\(first.prefix(64))'") }
            guard words.count >= 3 else { throw fail("a user line needs a name and a password hash") }
            let name = String(words[1])
            guard (1...nameBytesMax).contains(name.utf8.count),
                name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-@".contains($0)) })
            else { throw fail("user name '\(name.prefix(64))' must be 1 to \(nameBytesMax) of A-Z a-z 0-9 . _ - @") }
            if let earlier = lines[name] { throw fail("duplicate user '\(name)' (first defined on line \(earlier))") }
            let hash: PasswordHash
            do {
                hash = try PasswordHash(parsing: String(words[2]))
            } catch {
                throw fail("user '\(name)': \(error)")
            }
            var permissions: Permissions = []
            var patterns: [[UInt8]] = []
            for rule in words.dropFirst(3) {
                if rule.hasPrefix("~") {
                    guard rule.count > 1 else { throw fail("user '\(name)': an empty key pattern '~'") }
                    patterns.append(Array(rule.dropFirst().utf8))
                } else if rule.hasPrefix("+"), let named = Permissions.named.first(where: { "+" + $0.name == rule }) {
                    permissions.formUnion(named.permissions)
                } else {
                    throw fail("user '\(name)': unknown rule '\(rule.prefix(64))' (expected +read, +write, +locks, +admin, +all or ~PATTERN)")
                }
            }
            guard users.count < usersMax else { throw fail("more than \(usersMax) users") }
            lines[name] = number
            users.append(User(name: name, passwordHash: hash, permissions: permissions, keyPatterns: patterns))
        }
        return users
    }
}
