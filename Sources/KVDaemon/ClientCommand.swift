public import KVStore

/// A parsed client request (docs/PROTOCOL.md). Parsing is pure: it never touches the node.
public enum ClientCommand: Hashable, Sendable {
    case ping([UInt8]?)
    case echo([UInt8])
    case quit
    /// `INFO [section ...]`, lower-cased; none means the default set (every section).
    case info(sections: [String])
    case readOnly(Bool)
    /// `CONFIG GET`, `COMMAND`: answered with an empty array so Redis tools start quietly.
    case emptyArray
    /// `GET`, `MGET`, `EXISTS`, `STRLEN`, `TYPE`, `GETRANGE`, `TTL` and its relatives, `DBSIZE`.
    case read(KVRead)
    case getMeta([UInt8])
    case list(prefix: [UInt8], limit: Int)
    case leaseTTL(UInt64)
    /// `SCAN`: up to `count` keys after the cursor's key (nil: from the start).
    case scan(after: [UInt8]?, pattern: [UInt8]?, count: Int, type: String?)
    /// `KEYS pattern`.
    case keys(pattern: [UInt8])
    /// `WATCH key ...`: read for the connection, which keeps each key's modification index.
    case watch([[UInt8]])
    /// `RANDOMKEY`: some live key, or nil if there is none.
    case randomKey
    case owner([UInt8])
    /// A write through the log; `session` makes it exactly-once.
    case write(KVOperation, session: SessionStamp?, reply: WriteReplyStyle)
    /// `LOCK name LEASE id [WAIT ms]`: a write that may then wait to be granted.
    case lock(name: [UInt8], leaseID: UInt64, waitMillis: UInt64?, session: SessionStamp?)
    case transferLeadership(UInt64)
    /// `SNAPSHOT BEGIN|CHUNK|END`: a backup streamed one chunk per request (docs/PROTOCOL.md, "Backups").
    case backup(BackupStep)
    /// `MEMBER ...`: membership changes and the members' addresses (leader only, but `LIST`).
    case member(MemberRequest)
    /// Answered by the client connection itself (see `ConnectionCommand`).
    case connection(ConnectionCommand)

    /// How a write's result is shown, where the same operation answers several commands.
    public enum WriteReplyStyle: Hashable, Sendable {
        case standard
        /// CAS/CASMOD: `:1`/`:0`.
        case swapFlag
        /// LEASE KEEPALIVE: the TTL in seconds.
        case ttlSeconds
        /// SETNX: `:1` if set, `:0` if the key existed.
        case setFlag
        /// EXEC: each queued command's result in its own style.
        case transaction([WriteReplyStyle])
    }

    /// Whether the command reads state, writes through the log, or needs neither.
    public var isRead: Bool {
        switch self {
        case .read, .getMeta, .list, .owner, .leaseTTL, .scan, .keys, .watch, .randomKey: return true
        case .ping, .echo, .quit, .info, .readOnly, .emptyArray, .write, .lock, .transferLeadership, .backup, .connection, .member:
            return false
        }
    }
}

/// A request that cannot be parsed; replied as `-ERR <message>` (definite).
public struct CommandError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Turns RESP argument lists into `ClientCommand`s.
public enum CommandParser {
    /// The default bound of `LIST` when none is given.
    public static let defaultListLimit = 1000

    public static func parse(_ arguments: [[UInt8]]) throws(CommandError) -> ClientCommand {
        guard let first = arguments.first else { throw CommandError("empty command") }
        let name = upper(first)
        let args = Array(arguments.dropFirst())
        switch name {
        case "PING":
            guard args.count <= 1 else { throw arity(name) }
            return .ping(args.first)
        case "ECHO": return .echo(try exactly(1, args, name)[0])
        case "QUIT": return .quit
        case "INFO": return .info(sections: args.map { upper($0).lowercased() })
        case "READONLY": return .readOnly(true)
        case "READWRITE": return .readOnly(false)
        case "CONFIG": return try parseConfig(args)
        case "COMMAND": return parseCommand(args)
        case "HELLO": return try parseHello(args)
        case "AUTH": return try parseAuth(args)
        case "CLIENT": return try parseClient(args)
        case "SELECT": return try parseSelect(args)
        case "FUNCTION": return try parseFunction(args)
        case "GETMETA": return .getMeta(try exactly(1, args, name)[0])
        case "SCAN": return try parseScan(args, countMax: scanCountMax)
        case "KEYS": return .keys(pattern: try exactly(1, args, name)[0])
        case "WATCH": return .watch(try atLeast(1, args, name))
        case "RANDOMKEY": _ = try exactly(0, args, name); return .randomKey
        case "TIME": _ = try exactly(0, args, name); return .connection(.time)
        case "MULTI": _ = try exactly(0, args, name); return .connection(.multi)
        case "EXEC": _ = try exactly(0, args, name); return .connection(.exec(session: nil))
        case "DISCARD": _ = try exactly(0, args, name); return .connection(.discard)
        case "UNWATCH": _ = try exactly(0, args, name); return .connection(.unwatch)
        case "RESET": _ = try exactly(0, args, name); return .connection(.reset)
        case "LIST": return try parseList(args)
        case "OWNER": return .owner(try exactly(1, args, name)[0])
        case "LEASE": return try parseLease(args)
        case "LOCK": return try parseLock(args, session: nil)
        case "LEADER":
            let rest = try exactly(2, args, name)
            guard upper(rest[0]) == "TRANSFER" else { throw CommandError("unknown subcommand for 'LEADER'") }
            return .transferLeadership(try unsigned(rest[1], "node id"))
        case "SESSION": return try parseSession(args)
        case "SNAPSHOT": return .backup(try BackupStep.parse(args))
        case "MEMBER": return try parseMember(args)
        default:
            if let read = try parseRead(name, args) { return .read(read) }
            let (operation, style) = try parseWrite(name, args, fence: nil)
            return .write(operation, session: nil, reply: style)
        }
    }

    /// The most keys one `SCAN` call returns (a larger `COUNT` is capped).
    public static let scanCountMax = 1_000

    /// Writes that may be fenced and wrapped in a session.
    static func parseWrite(
        _ name: String, _ args: [[UInt8]], fence: FenceCondition?
    ) throws(CommandError) -> (KVOperation, ClientCommand.WriteReplyStyle) {
        switch name {
        case "SET": return (try parseSet(args, fence: fence), .standard)
        case "SETNX":
            let rest = try exactly(2, args, name)
            return (.put(key: rest[0], value: rest[1], condition: .ifAbsent, lease: nil, fence: fence), .setFlag)
        case "DEL": return (.delete(keys: try atLeast(1, args, name), fence: fence), .standard)
        case "INCR": return (.increment(key: try exactly(1, args, name)[0], delta: 1, fence: fence), .standard)
        case "DECR": return (.increment(key: try exactly(1, args, name)[0], delta: -1, fence: fence), .standard)
        case "INCRBY", "DECRBY":
            let rest = try exactly(2, args, name)
            let delta = try signed(rest[1])
            if name == "DECRBY" && delta == Int64.min { throw CommandError("decrement would overflow") }
            return (.increment(key: rest[0], delta: name == "INCRBY" ? delta : -delta, fence: fence), .standard)
        case "CAS":
            let rest = try exactly(3, args, name)
            return (.compareAndSwap(key: rest[0], expected: .value(rest[1]), value: rest[2], fence: fence), .swapFlag)
        case "CASMOD":
            let rest = try exactly(3, args, name)
            let index = try unsigned(rest[1], "mod index")
            return (.compareAndSwap(key: rest[0], expected: index == 0 ? .absent : .modIndex(index), value: rest[2], fence: fence), .swapFlag)
        case "FENCE":
            guard fence == nil else { throw CommandError("FENCE cannot be fenced") }
            let rest = try exactly(2, args, name)
            return (.fence(name: rest[0], token: try unsigned(rest[1], "token")), .standard)
        case "UNLOCK":
            guard fence == nil else { throw CommandError("UNLOCK cannot be fenced") }
            let rest = try exactly(2, args, name)
            return (.lockRelease(name: rest[0], token: try unsigned(rest[1], "token")), .standard)
        case "FENCED":
            guard fence == nil else { throw CommandError("FENCED cannot be nested") }
            guard args.count >= 3 else { throw arity(name) }
            let inner = FenceCondition(lock: args[0], token: try unsigned(args[1], "token"))
            let innerName = upper(args[2])
            guard Self.fenceableWrites.contains(innerName) else {
                throw CommandError("FENCED applies to \(Self.fenceableWrites.joined(separator: ", ")), not '\(innerName)'")
            }
            return try parseWrite(innerName, Array(args.dropFirst(3)), fence: inner)
        default:
            if let parsed = try parseRedisWrite(name, args, fence: fence) { return parsed }
            throw CommandError("unknown command '\(String(decoding: name.utf8.prefix(64), as: UTF8.self))'")
        }
    }

    /// The writes `FENCED` may wrap: those that change one key's value.
    static let fenceableWrites = [
        "SET", "DEL", "INCR", "INCRBY", "DECR", "DECRBY", "CAS", "CASMOD", "APPEND", "SETRANGE", "INCRBYFLOAT", "DELIFEQ",
        "DELEX",
    ]

    static func parseSet(_ args: [[UInt8]], fence: FenceCondition?) throws(CommandError) -> KVOperation {
        guard args.count >= 2 else { throw arity("SET") }
        if let redisSet = try parseSetOptions(args, fence: fence) { return redisSet }
        var condition = PutCondition.always
        var lease: UInt64?
        var index = 2
        while index < args.count {
            switch upper(args[index]) {
            case "NX" where condition == .always: condition = .ifAbsent
            case "XX" where condition == .always: condition = .ifPresent
            case "LEASE" where lease == nil && index + 1 < args.count:
                lease = try unsigned(args[index + 1], "lease id")
                index += 1
            default: throw CommandError("syntax error")
            }
            index += 1
        }
        return .put(key: args[0], value: args[1], condition: condition, lease: lease, fence: fence)
    }

    static func parseList(_ args: [[UInt8]]) throws(CommandError) -> ClientCommand {
        guard args.count == 1 || args.count == 3 else { throw arity("LIST") }
        var limit = defaultListLimit
        if args.count == 3 {
            guard upper(args[1]) == "LIMIT" else { throw CommandError("syntax error") }
            let value = try unsigned(args[2], "limit")
            limit = Int(min(value, UInt64(Int.max)))
        }
        return .list(prefix: args[0], limit: limit)
    }

    static func parseLease(_ args: [[UInt8]]) throws(CommandError) -> ClientCommand {
        guard args.count == 2 else { throw arity("LEASE") }
        switch upper(args[0]) {
        case "GRANT":
            let millis = try secondsToMillis(args[1])
            return .write(.leaseGrant(ttlMillis: millis), session: nil, reply: .standard)
        case "KEEPALIVE": return .write(.leaseKeepAlive(leaseID: try unsigned(args[1], "lease id")), session: nil, reply: .ttlSeconds)
        case "REVOKE": return .write(.leaseRevoke(leaseID: try unsigned(args[1], "lease id")), session: nil, reply: .standard)
        case "TTL": return .leaseTTL(try unsigned(args[1], "lease id"))
        default: throw CommandError("unknown subcommand for 'LEASE'")
        }
    }

    static func parseLock(_ args: [[UInt8]], session: SessionStamp?) throws(CommandError) -> ClientCommand {
        guard args.count == 3 || args.count == 5, upper(args[1]) == "LEASE" else {
            throw CommandError("usage: LOCK name LEASE id [WAIT ms]")
        }
        let lease = try unsigned(args[2], "lease id")
        var wait: UInt64?
        if args.count == 5 {
            guard upper(args[3]) == "WAIT" else { throw CommandError("usage: LOCK name LEASE id [WAIT ms]") }
            wait = try unsigned(args[4], "wait")
        }
        return .lock(name: args[0], leaseID: lease, waitMillis: wait, session: session)
    }

    static func parseSession(_ args: [[UInt8]]) throws(CommandError) -> ClientCommand {
        if args.count == 1 && upper(args[0]) == "REGISTER" {
            return .write(.sessionRegister, session: nil, reply: .standard)
        }
        guard args.count >= 3 else { throw CommandError("usage: SESSION REGISTER | SESSION client-id seq command...") }
        let stamp = SessionStamp(clientID: try unsigned(args[0], "client id"), sequence: try unsigned(args[1], "sequence"))
        guard stamp.sequence > 0 else { throw CommandError("sequence numbers start at 1") }
        let innerName = upper(args[2])
        let innerArgs = Array(args.dropFirst(3))
        switch innerName {
        case "LOCK": return try parseLock(innerArgs, session: stamp)
        case "EXEC":
            _ = try exactly(0, innerArgs, innerName)
            return .connection(.exec(session: stamp))
        case "LEASE":
            guard case .write(let operation, nil, let style) = try parseLease(innerArgs) else {
                throw CommandError("only writes can run in a session")
            }
            return .write(operation, session: stamp, reply: style)
        default:
            let (operation, style) = try parseWrite(innerName, innerArgs, fence: nil)
            return .write(operation, session: stamp, reply: style)
        }
    }

    // MARK: Argument helpers

    static func upper(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix(32).map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }, as: UTF8.self)
    }

    static func arity(_ name: String) -> CommandError {
        CommandError("wrong number of arguments for '\(name.lowercased())' command")
    }

    static func exactly(_ count: Int, _ args: [[UInt8]], _ name: String) throws(CommandError) -> [[UInt8]] {
        guard args.count == count else { throw arity(name) }
        return args
    }

    static func atLeast(_ count: Int, _ args: [[UInt8]], _ name: String) throws(CommandError) -> [[UInt8]] {
        guard args.count >= count else { throw arity(name) }
        return args
    }

    static func unsigned(_ bytes: [UInt8], _ what: String) throws(CommandError) -> UInt64 {
        guard bytes.count <= 20, let value = UInt64(String(decoding: bytes, as: UTF8.self)) else {
            throw CommandError("\(what) is not a non-negative integer")
        }
        return value
    }

    static func signed(_ bytes: [UInt8]) throws(CommandError) -> Int64 {
        guard bytes.count <= 20, let value = Int64(String(decoding: bytes, as: UTF8.self)) else {
            throw CommandError("value is not an integer or out of range")
        }
        return value
    }

    /// Seconds, possibly fractional ("1.5"), as milliseconds.
    static func secondsToMillis(_ bytes: [UInt8]) throws(CommandError) -> UInt64 {
        guard bytes.count <= 20, let seconds = Double(String(decoding: bytes, as: UTF8.self)), seconds.isFinite,
            seconds > 0, seconds < 1e12
        else { throw CommandError("TTL must be a positive number of seconds") }
        return UInt64((seconds * 1000).rounded())
    }
}
