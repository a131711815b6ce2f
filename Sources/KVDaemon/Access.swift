import KVStore

/// What running a command needs: a permission category, and the names (keys, lock and fence
/// names) it touches, which the user's key patterns must all match. `everyName` marks commands
/// that reach keys the request does not name (`KEYS`, `SCAN`, `RANDOMKEY`, `LIST`): they need
/// the pattern `*`.
struct AccessNeed: Hashable, Sendable {
    var permission: Permissions
    var names: [[UInt8]] = []
    var everyName = false

    /// Commands any authenticated connection may run (the connection's own state, `INFO`,
    /// `CONFIG GET`, `MEMBER LIST`, `SESSION REGISTER`).
    static let none = AccessNeed(permission: [])
}

extension ClientCommand {
    /// What this command needs of the connection's user (docs/SECURITY.md, "Permissions").
    var accessNeed: AccessNeed {
        switch self {
        case .ping, .echo, .quit, .info, .readOnly, .emptyArray, .connection: return .none
        case .read(let read): return read.accessNeed
        case .getMeta(let key), .owner(let key): return AccessNeed(permission: .read, names: [key])
        case .watch(let keys): return AccessNeed(permission: .read, names: keys)
        case .list, .scan, .keys, .randomKey: return AccessNeed(permission: .read, everyName: true)
        case .leaseTTL: return AccessNeed(permission: .locks)
        case .write(let operation, _, _): return operation.accessNeed
        case .lock(let name, _, _, _): return AccessNeed(permission: .locks, names: [name])
        case .transferLeadership, .backup: return AccessNeed(permission: .admin)
        case .member(.list): return .none
        case .member: return AccessNeed(permission: .admin)
        }
    }
}

extension KVRead {
    var accessNeed: AccessNeed {
        switch self {
        case .get(let key), .strlen(let key), .type(let key), .getRange(let key, _, _), .ttl(let key, _):
            AccessNeed(permission: .read, names: [key])
        case .mget(let keys), .exists(let keys): AccessNeed(permission: .read, names: keys)
        case .dbsize: AccessNeed(permission: .read)
        case .echo: .none
        }
    }
}

extension KVOperation {
    /// Key writes need `write` on their keys (a fenced one also names its lock); leases, locks
    /// and fences need `locks`; operations only the leader proposes, and flushing every key,
    /// need `admin`.
    var accessNeed: AccessNeed {
        switch self {
        case .put(let key, _, _, _, let fence), .compareAndSwap(let key, _, _, let fence), .increment(let key, _, let fence),
            .deleteIf(let key, _, let fence), .append(let key, _, let fence), .setRange(let key, _, _, let fence),
            .incrementFloat(let key, _, let fence):
            return Self.write([key], fence)
        case .delete(let keys, let fence): return Self.write(keys, fence)
        case .set(let request): return Self.write([request.key], request.fence)
        case .expire(let key, _, _), .persist(let key), .getEx(let key, _), .getDelete(let key): return Self.write([key], nil)
        case .rename(let from, let to, _), .copy(let from, let to, _): return Self.write([from, to], nil)
        case .multiSet(let pairs, _):
            return Self.write(stride(from: 0, to: pairs.count, by: 2).map { pairs[$0] }, nil)
        case .read(let read): return read.accessNeed
        case .transaction(let operations, let watches):
            var need = AccessNeed(permission: [], names: watches.map(\.key))
            for operation in operations {
                let inner = operation.accessNeed
                need.permission.formUnion(inner.permission)
                need.names += inner.names
                need.everyName = need.everyName || inner.everyName
            }
            return need
        case .leaseGrant, .leaseKeepAlive, .leaseRevoke: return AccessNeed(permission: .locks)
        // Any user may open an exactly-once session; what it then runs is checked.
        case .sessionRegister: return .none
        case .lockAcquire(let name, _, _), .lockRelease(let name, _), .fence(let name, _):
            return AccessNeed(permission: .locks, names: [name])
        case .flush: return AccessNeed(permission: .admin, everyName: true)
        case .leaseExpire, .leaseCheckpoint, .expireKeys, .memberSet, .memberRemove: return AccessNeed(permission: .admin)
        }
    }

    private static func write(_ keys: [[UInt8]], _ fence: FenceCondition?) -> AccessNeed {
        AccessNeed(permission: .write, names: keys + (fence.map { [$0.lock] } ?? []))
    }
}

extension User {
    /// Nil if this user may run a command needing `need`, else the `-NOPERM` line (Redis's wording).
    func denial(_ need: AccessNeed, command: String) -> String? {
        guard permissions.isSuperset(of: need.permission) else {
            return "NOPERM User \(name) has no permissions to run the '\(command)' command"
        }
        if need.everyName && !allNames {
            return "NOPERM User \(name) has no permissions to access every key (the '\(command)' command needs the pattern ~*)"
        }
        guard need.names.allSatisfy(mayTouch) else { return "NOPERM No permissions to access a key" }
        return nil
    }
}
