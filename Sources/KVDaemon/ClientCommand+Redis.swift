import KVStore

/// Redis's string, key, expiry and transaction commands (docs/PROTOCOL.md, "Redis commands"),
/// parsed with Redis's own error messages where a client or Redis's test suite checks them.
extension CommandParser {
    /// Reads that `parse` turns into `ClientCommand.read`; nil if `name` is none of them.
    static func parseRead(_ name: String, _ args: [[UInt8]]) throws(CommandError) -> KVRead? {
        switch name {
        case "GET": return .get(try exactly(1, args, name)[0])
        case "MGET": return .mget(try atLeast(1, args, name))
        case "EXISTS": return .exists(try atLeast(1, args, name))
        case "STRLEN": return .strlen(try exactly(1, args, name)[0])
        case "TYPE": return .type(try exactly(1, args, name)[0])
        case "GETRANGE", "SUBSTR":
            let rest = try exactly(3, args, name)
            return .getRange(rest[0], start: try signed(rest[1]), end: try signed(rest[2]))
        case "TTL": return .ttl(try exactly(1, args, name)[0], .seconds)
        case "PTTL": return .ttl(try exactly(1, args, name)[0], .millis)
        case "EXPIRETIME": return .ttl(try exactly(1, args, name)[0], .unixSeconds)
        case "PEXPIRETIME": return .ttl(try exactly(1, args, name)[0], .unixMillis)
        case "DBSIZE":
            _ = try exactly(0, args, name)
            return .dbsize
        default: return nil
        }
    }

    /// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
    static func parseScan(_ args: [[UInt8]], countMax: Int) throws(CommandError) -> ClientCommand {
        guard let first = args.first else { throw arity("SCAN") }
        let cursor = try ScanCursor.decode(first)
        var pattern: [UInt8]?
        var count = 10
        var type: String?
        var index = 1
        while index < args.count {
            guard index + 1 < args.count else { throw CommandError("syntax error") }
            let value = args[index + 1]
            switch upper(args[index]) {
            case "MATCH": pattern = value
            case "COUNT":
                let parsed = try signed(value)
                guard parsed >= 1 else { throw CommandError("syntax error") }
                count = Int(min(parsed, Int64(countMax)))
            case "TYPE": type = upper(value).lowercased()
            default: throw CommandError("syntax error")
            }
            index += 2
        }
        return .scan(after: cursor, pattern: pattern, count: count, type: type)
    }

    /// Writes beyond kvd's own (`parseWrite` handles SET, DEL, INCR and the fenced forms).
    static func parseRedisWrite(
        _ name: String, _ args: [[UInt8]], fence: FenceCondition?
    ) throws(CommandError) -> (KVOperation, ClientCommand.WriteReplyStyle)? {
        switch name {
        case "SETEX", "PSETEX":
            let rest = try exactly(3, args, name)
            let amount = try signed(rest[1])
            guard amount > 0, let millis = name == "SETEX" ? millisFromSeconds(amount) : amount else {
                throw CommandError("invalid expire time in '\(name.lowercased())' command")
            }
            return (.set(SetRequest(key: rest[0], value: rest[2], expiry: .after(millis: UInt64(millis)), fence: fence)), .standard)
        case "GETSET":
            let rest = try exactly(2, args, name)
            return (.set(SetRequest(key: rest[0], value: rest[1], returnPrevious: true, fence: fence)), .standard)
        case "GETDEL": return (.getDelete(key: try exactly(1, args, name)[0]), .standard)
        case "GETEX": return (try parseGetEx(try atLeast(1, args, name)), .standard)
        case "MSET", "MSETNX":
            guard args.count >= 2, args.count % 2 == 0 else { throw arity(name) }
            return (.multiSet(pairs: args, onlyIfNoneExist: name == "MSETNX"), .standard)
        case "APPEND":
            let rest = try exactly(2, args, name)
            return (.append(key: rest[0], value: rest[1], fence: fence), .standard)
        case "SETRANGE":
            let rest = try exactly(3, args, name)
            let offset = try signed(rest[1])
            guard offset >= 0 else { throw CommandError("offset is out of range") }
            return (.setRange(key: rest[0], offset: UInt64(offset), value: rest[2], fence: fence), .standard)
        case "INCRBYFLOAT":
            let rest = try exactly(2, args, name)
            guard let delta = parseIncrement(rest[1]) else { throw CommandError("value is not a valid float") }
            return (.incrementFloat(key: rest[0], delta: delta, fence: fence), .standard)
        case "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT": return (try parseExpire(name, args), .standard)
        case "PERSIST": return (.persist(key: try exactly(1, args, name)[0]), .standard)
        case "UNLINK": return (.delete(keys: try atLeast(1, args, name), fence: fence), .standard)
        case "RENAME", "RENAMENX":
            let rest = try exactly(2, args, name)
            return (.rename(from: rest[0], to: rest[1], onlyIfAbsent: name == "RENAMENX"), .standard)
        case "COPY": return (try parseCopy(args), .standard)
        case "FLUSHDB", "FLUSHALL":
            guard args.count <= 1, args.allSatisfy({ ["ASYNC", "SYNC"].contains(upper($0)) }) else { throw CommandError("syntax error") }
            return (.flush, .standard)
        case "DELIFEQ":
            let rest = try exactly(2, args, name)
            return (.deleteIf(key: rest[0], condition: .equal(rest[1]), fence: fence), .standard)
        case "DELEX": return (try parseDelEx(args, fence: fence), .standard)
        default: return nil
        }
    }

    /// An INCRBYFLOAT increment: a finite decimal number, or an infinity, which Redis accepts here
    /// and then refuses as producing an infinite value.
    static func parseIncrement(_ bytes: [UInt8]) -> Double? {
        switch upper(bytes) {
        case "INF", "+INF", "INFINITY", "+INFINITY": return .infinity
        case "-INF", "-INFINITY": return -.infinity
        default: return KVStateMachine.parseFloat(bytes)
        }
    }

    /// Seconds as milliseconds, or nil on overflow.
    static func millisFromSeconds(_ seconds: Int64) -> Int64? {
        let (millis, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        return overflow ? nil : millis
    }

    /// SET's options beyond NX/XX/LEASE: nil if there are none (a plain `put`).
    static func parseSetOptions(_ args: [[UInt8]], fence: FenceCondition?) throws(CommandError) -> KVOperation? {
        var request = SetRequest(key: args[0], value: args[1], fence: fence)
        var conditionSeen = false, expirySeen = false, redisOnly = false
        var index = 2
        while index < args.count {
            let option = upper(args[index])
            let hasValue = index + 1 < args.count
            switch option {
            case "NX", "XX":
                guard !conditionSeen else { throw CommandError("syntax error") }
                request.condition = option == "NX" ? .ifAbsent : .ifPresent
                conditionSeen = true
            case "IFEQ" where hasValue, "IFNE" where hasValue:
                guard !conditionSeen else { throw CommandError("syntax error") }
                request.condition = .value(option == "IFEQ" ? .equal(args[index + 1]) : .notEqual(args[index + 1]))
                conditionSeen = true
                redisOnly = true
                index += 1
            case "GET":
                request.returnPrevious = true
                redisOnly = true
            case "KEEPTTL":
                guard !expirySeen else { throw CommandError("syntax error") }
                request.expiry = .keep
                expirySeen = true
                redisOnly = true
            case "EX" where hasValue, "PX" where hasValue, "EXAT" where hasValue, "PXAT" where hasValue:
                guard !expirySeen else { throw CommandError("syntax error") }
                let amount = try signed(args[index + 1])
                let millis = option == "EX" || option == "EXAT" ? millisFromSeconds(amount) : amount
                guard amount > 0, let millis else { throw CommandError("invalid expire time in 'set' command") }
                request.expiry = option.hasSuffix("AT") ? .at(unixMillis: UInt64(millis)) : .after(millis: UInt64(millis))
                expirySeen = true
                redisOnly = true
                index += 1
            case "LEASE" where hasValue:
                index += 1
            default: throw CommandError("syntax error")
            }
            index += 1
        }
        guard redisOnly else { return nil }
        if args.dropFirst(2).contains(where: { upper($0) == "LEASE" }) {
            throw CommandError("LEASE cannot be combined with GET, IFEQ, IFNE, KEEPTTL, EX, PX, EXAT or PXAT")
        }
        return .set(request)
    }

    static func parseGetEx(_ args: [[UInt8]]) throws(CommandError) -> KVOperation {
        let key = args[0]
        switch args.count {
        case 1: return .getEx(key: key, change: .keep)
        case 2:
            guard upper(args[1]) == "PERSIST" else { throw CommandError("syntax error") }
            return .getEx(key: key, change: .persist)
        case 3:
            let option = upper(args[1])
            guard ["EX", "PX", "EXAT", "PXAT"].contains(option) else { throw CommandError("syntax error") }
            let amount = try signed(args[2])
            let millis = option == "EX" || option == "EXAT" ? millisFromSeconds(amount) : amount
            guard amount > 0, let millis else { throw CommandError("invalid expire time in 'getex' command") }
            return .getEx(key: key, change: .expire(option.hasSuffix("AT") ? .at(unixMillis: UInt64(millis)) : .after(millis: UInt64(millis))))
        default: throw CommandError("syntax error")
        }
    }

    /// The largest Unix time in milliseconds a relative deadline may be added to (year 2109):
    /// a relative time that would overflow past it is refused when parsed, as Redis refuses it.
    static let expireBaseMillisMax: Int64 = 1 << 42

    static func parseExpire(_ name: String, _ args: [[UInt8]]) throws(CommandError) -> KVOperation {
        guard args.count >= 2 else { throw arity(name) }
        let amount = try signed(args[1])
        let inSeconds = name == "EXPIRE" || name == "EXPIREAT"
        let relative = !name.hasSuffix("AT")
        let invalid = CommandError("invalid expire time in '\(name.lowercased())' command")
        guard let millis = inSeconds ? millisFromSeconds(amount) : amount else { throw invalid }
        if relative, millis.addingReportingOverflow(expireBaseMillisMax).overflow { throw invalid }
        var condition = ExpireCondition.always
        for option in args.dropFirst(2) {
            switch upper(option) {
            case "NX": condition.insert(.ifNone)
            case "XX": condition.insert(.ifSome)
            case "GT": condition.insert(.ifLater)
            case "LT": condition.insert(.ifEarlier)
            default: throw CommandError("Unsupported option \(String(decoding: option.prefix(64), as: UTF8.self))")
            }
        }
        if condition.contains(.ifNone), condition != .ifNone {
            throw CommandError("NX and XX, GT or LT options at the same time are not compatible")
        }
        if condition.isSuperset(of: [.ifLater, .ifEarlier]) {
            throw CommandError("GT and LT options at the same time are not compatible")
        }
        return .expire(key: args[0], at: relative ? .after(millis: millis) : .at(unixMillis: millis), condition: condition)
    }

    static func parseCopy(_ args: [[UInt8]]) throws(CommandError) -> KVOperation {
        guard args.count >= 2 else { throw arity("COPY") }
        var replace = false
        var index = 2
        while index < args.count {
            switch upper(args[index]) {
            case "REPLACE": replace = true
            case "DB" where index + 1 < args.count:
                guard try signed(args[index + 1]) == 0 else { throw CommandError("DB index is out of range") }
                index += 1
            default: throw CommandError("syntax error")
            }
            index += 1
        }
        return .copy(from: args[0], to: args[1], replace: replace)
    }

    /// `DELEX key [IFEQ value | IFNE value]`; the digest forms (`IFDEQ`, `IFDNE`) are refused.
    static func parseDelEx(_ args: [[UInt8]], fence: FenceCondition?) throws(CommandError) -> KVOperation {
        switch args.count {
        case 1: return .delete(keys: args, fence: fence)
        case 3:
            switch upper(args[1]) {
            case "IFEQ": return .deleteIf(key: args[0], condition: .equal(args[2]), fence: fence)
            case "IFNE": return .deleteIf(key: args[0], condition: .notEqual(args[2]), fence: fence)
            case "IFDEQ", "IFDNE": throw CommandError("DELEX digest conditions (IFDEQ, IFDNE) are not supported; use IFEQ or IFNE")
            default: throw CommandError("syntax error")
            }
        default: throw arity("DELEX")
        }
    }
}
