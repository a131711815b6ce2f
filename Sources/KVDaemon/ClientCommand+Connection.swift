public import KVStore

/// Commands about the client connection itself (the handshake Redis clients send first and the
/// `CLIENT` bookkeeping they expect), answered by the connection without the Raft loop.
public enum ConnectionCommand: Hashable, Sendable {
    /// `HELLO [protover [AUTH username password] [SETNAME name]]`. The version is checked by the
    /// connection (`-NOPROTO` for anything but 2 and 3); credentials as `AUTH`'s.
    case hello(version: Int64?, clientName: [UInt8]?, credentials: Credentials?)
    /// `AUTH password` (the `default` user) or `AUTH username password` (docs/SECURITY.md).
    case auth(Credentials)
    case setName([UInt8])
    case getName
    case id
    /// `CLIENT SETINFO LIB-NAME|LIB-VER value`: accepted and ignored.
    case setInfo
    /// `SELECT index`: kvd has one database, 0.
    case select(Int64)
    /// `CONFIG GET pattern [pattern ...]`: the Redis parameters tools ask for (read-only).
    case configGet([[UInt8]])
    /// `COMMAND COUNT`.
    case commandCount
    /// `MULTI`, `EXEC`, `DISCARD`, `UNWATCH`: the connection queues a transaction and sends it to
    /// the Raft loop as one write at `EXEC` (docs/PROTOCOL.md, "Transactions").
    case multi
    /// `EXEC`, or `SESSION client-id seq EXEC`: the transaction is then exactly-once in that
    /// session (a retry of the whole `MULTI ... EXEC` gets the first attempt's replies).
    case exec(session: SessionStamp?)
    case discard
    case unwatch
    /// `RESET`: back to a new connection's state (RESP2, no name, no transaction, no watches).
    case reset
    /// `FUNCTION FLUSH`: kvd has no functions (no scripting), so there is nothing to delete.
    case functionFlush
    /// `TIME`: this node's clock, `[unix-seconds, microseconds]`.
    case time
    /// `CLIENT REDIRECT ON|OFF`: whether a follower answers this connection's writes and
    /// linearizable reads with `-NOTLEADER` (ON) instead of forwarding them to the leader (OFF,
    /// the default); docs/PROTOCOL.md, "Followers".
    case redirect(Bool)
}

/// A user name and password sent by a client; the password is never logged or shown.
public struct Credentials: Hashable, Sendable, CustomStringConvertible {
    public var user: String
    public var password: [UInt8]

    public init(user: String, password: [UInt8]) {
        self.user = user
        self.password = password
    }

    public var description: String { "Credentials(user: \(user), password: <hidden>)" }
}

extension CommandParser {
    static func parseAuth(_ args: [[UInt8]]) throws(CommandError) -> ClientCommand {
        switch args.count {
        case 1: return .connection(.auth(Credentials(user: UserDirectory.defaultUser, password: args[0])))
        case 2: return .connection(.auth(Credentials(user: String(decoding: args[0], as: UTF8.self), password: args[1])))
        default: throw CommandError("syntax error")
        }
    }

    static func parseHello(_ args: [[UInt8]]) throws(CommandError) -> ClientCommand {
        guard let first = args.first else { return .connection(.hello(version: nil, clientName: nil, credentials: nil)) }
        guard first.count <= 20, let version = Int64(String(decoding: first, as: UTF8.self)) else {
            throw CommandError("Protocol version is not an integer or out of range")
        }
        var name: [UInt8]?
        var credentials: Credentials?
        var rest = args.dropFirst()
        while let option = rest.first {
            switch upper(option) {
            case "AUTH" where rest.count >= 3:
                let user = rest[rest.index(rest.startIndex, offsetBy: 1)], password = rest[rest.index(rest.startIndex, offsetBy: 2)]
                credentials = Credentials(user: String(decoding: user, as: UTF8.self), password: password)
                rest = rest.dropFirst(3)
            case "SETNAME" where rest.count >= 2:
                name = try clientName(rest[rest.index(after: rest.startIndex)])
                rest = rest.dropFirst(2)
            default: throw CommandError("Syntax error in HELLO option '\(String(decoding: option.prefix(64), as: UTF8.self))'")
            }
        }
        return .connection(.hello(version: version, clientName: name, credentials: credentials))
    }

    static func parseClient(_ args: [[UInt8]]) throws(CommandError) -> ClientCommand {
        guard let sub = args.first else { throw arity("CLIENT") }
        let name = upper(sub)
        switch name {
        case "SETNAME": return .connection(.setName(try clientName(try exactly(2, args, "CLIENT|SETNAME")[1])))
        case "GETNAME": _ = try exactly(1, args, "CLIENT|GETNAME"); return .connection(.getName)
        case "ID": _ = try exactly(1, args, "CLIENT|ID"); return .connection(.id)
        case "SETINFO":
            let rest = try exactly(3, args, "CLIENT|SETINFO")
            guard ["LIB-NAME", "LIB-VER"].contains(upper(rest[1])) else {
                throw CommandError("Unrecognized option '\(String(decoding: rest[1].prefix(64), as: UTF8.self))'")
            }
            return .connection(.setInfo)
        case "REDIRECT":
            switch upper(try exactly(2, args, "CLIENT|REDIRECT")[1]) {
            case "ON": return .connection(.redirect(true))
            case "OFF": return .connection(.redirect(false))
            default: throw CommandError("CLIENT REDIRECT takes ON or OFF")
            }
        default:
            throw CommandError("unknown subcommand '\(String(decoding: sub.prefix(64), as: UTF8.self))'. Try CLIENT HELP.")
        }
    }

    /// Every command name `parse` accepts, for `COMMAND COUNT`.
    static let commandNames = [
        "PING", "ECHO", "QUIT", "AUTH", "INFO", "READONLY", "READWRITE", "CONFIG", "COMMAND", "HELLO", "CLIENT", "SELECT",
        "GET", "GETMETA", "MGET", "EXISTS", "LIST", "OWNER", "LEASE", "LOCK", "LEADER", "MEMBER", "SESSION", "SET", "DEL",
        "INCR", "DECR", "INCRBY", "DECRBY", "CAS", "CASMOD", "FENCE", "UNLOCK", "FENCED", "SETNX", "STRLEN", "GETRANGE",
        "TYPE", "SUBSTR", "TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME", "DBSIZE", "SCAN", "KEYS", "WATCH", "MULTI", "EXEC",
        "DISCARD", "UNWATCH", "RESET", "SETEX", "PSETEX", "GETSET", "GETDEL", "GETEX", "MSET", "MSETNX", "APPEND",
        "SETRANGE", "INCRBYFLOAT", "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "PERSIST", "UNLINK", "RENAME",
        "RENAMENX", "COPY", "FLUSHDB", "FLUSHALL", "DELIFEQ", "DELEX", "FUNCTION", "RANDOMKEY", "TIME", "SNAPSHOT",
    ]

    static func parseConfig(_ args: [[UInt8]]) throws(CommandError) -> ClientCommand {
        guard let sub = args.first else { throw arity("CONFIG") }
        switch upper(sub) {
        case "GET": return .connection(.configGet(Array(try atLeast(2, args, "CONFIG|GET").dropFirst())))
        case "SET", "RESETSTAT", "REWRITE":
            throw CommandError("CONFIG \(upper(sub)) is not supported: kvd's settings come from its configuration file")
        default:
            throw CommandError("unknown subcommand '\(String(decoding: sub.prefix(64), as: UTF8.self))'. Try CONFIG HELP.")
        }
    }

    /// `COMMAND COUNT` is counted; the command table itself (`COMMAND`, `COMMAND DOCS`, `COMMAND
    /// INFO`) is an empty array, which redis-cli and client libraries accept.
    static func parseCommand(_ args: [[UInt8]]) -> ClientCommand {
        guard let sub = args.first, upper(sub) == "COUNT" else { return .emptyArray }
        return .connection(.commandCount)
    }

    /// `FUNCTION FLUSH [ASYNC|SYNC]` (Redis's test suite sends it before every test file); every
    /// other `FUNCTION` subcommand is refused, since kvd runs no scripts.
    static func parseFunction(_ args: [[UInt8]]) throws(CommandError) -> ClientCommand {
        guard let sub = args.first else { throw arity("FUNCTION") }
        guard upper(sub) == "FLUSH", args.count <= 2 else {
            throw CommandError("FUNCTION \(String(decoding: sub.prefix(64), as: UTF8.self)) is not supported: kvd runs no scripts or functions")
        }
        return .connection(.functionFlush)
    }

    static func parseSelect(_ args: [[UInt8]]) throws(CommandError) -> ClientCommand {
        .connection(.select(try signed(try exactly(1, args, "SELECT")[0])))
    }

    /// A client name as Redis allows it: printable ASCII without spaces (empty clears it).
    static func clientName(_ bytes: [UInt8]) throws(CommandError) -> [UInt8] {
        guard bytes.count <= 512, bytes.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw CommandError("Client names cannot contain spaces, newlines or special characters.")
        }
        return bytes
    }
}
