import KVStore
import Linearizability
import RaftCore

@testable import KVDaemon

/// One simulated client. It registers a session, then runs one operation at a time against the
/// node it believes leads: every write is `SESSION id seq ...` and an indeterminate failure
/// (`-TIMEOUT`, `-UNAVAILABLE`, no reply) is retried with the same `seq` until a definite reply,
/// so each write has exactly one outcome. KV clients read and write a few keys and increment a
/// counter; lock clients hold a lease (kept alive in the background, outside the session, as
/// `kvctl lock` does), take a lock, write through `FENCED`, present their token to a fence
/// register, unlock, and sometimes pause past their lease and carry on with a stale token.
final class KVSimClient {
    typealias KV = KVModel<String, String>

    enum Action {
        case register
        case get(String)
        case set(String, String)
        case compareAndSwap(String, expected: String?, new: String)
        case delete(String)
        case increment(String)
        case grant(ttlMillis: UInt64)
        case revoke(UInt64)
        case lock(String, lease: UInt64, wait: Bool)
        case fencedSet(lock: String, token: UInt64, key: String, value: String)
        case fence(String, token: UInt64)
        case unlock(String, token: UInt64)
    }

    struct Pending {
        var action: Action
        var arguments: [[UInt8]]
        var call: HistoryRecorder<KV.Input, KV.Output>.Call?
        var request = 0
        var target: NodeID
        var deadline: UInt64 = 0
        var retryAt: UInt64?
        /// Some earlier attempt may have taken effect.
        var mayHaveApplied = false
        var attempts = 0
    }

    static let kvKeys = ["k0", "k1", "k2"]
    static let counterKey = "ctr"

    let id: Int
    /// The lock this client works with; nil for a KV client.
    let lockName: String?
    var target: NodeID
    var session: UInt64?
    var sequence: UInt64 = 0
    var pending: Pending?
    var nextOperationAt: UInt64 = 0
    var finishing = false
    var pausedUntil: UInt64 = 0
    var lease: (id: UInt64, ttlMillis: UInt64)?
    var holding: (name: String, token: UInt64)?
    var operationsWhileHolding = 0
    var staleTokenToTry: UInt64?
    var keepAliveAt: UInt64 = 0
    var keepAliveRequest: Int?
    var lastSeen: [String: String] = [:]
    /// Every `:n` an INCR of the counter answered.
    var incrementReplies: [Int64] = []
    var unresolvedIncrements = 0

    init(id: Int, lock: String?, target: NodeID) {
        self.id = id
        self.lockName = lock
        self.target = target
    }

    var isDone: Bool { pending == nil }

    var currentDescription: String {
        guard let pending else { return "idle" }
        return "\(pending.action) attempt \(pending.attempts) at \(pending.target)"
    }

    func step(_ sim: KVSimulation) {
        guard pausedUntil <= sim.now else { return }
        keepLeaseAlive(sim)
        if var current = pending {
            if let retryAt = current.retryAt {
                if retryAt <= sim.now {
                    send(&current, sim)
                    pending = current
                }
            } else if current.deadline <= sim.now {
                indeterminate(current, sim)
            }
            return
        }
        guard !finishing, sim.now >= nextOperationAt else { return }
        if lockName != nil, holding != nil, sim.faultsEnabled, sim.random.chance(sim.parameters.clientPausePerMille) {
            pausedUntil = sim.now + UInt64(sim.random.within(30...100))
            sim.stats.pauses += 1
            sim.note("client \(id) pauses holding \(holding.map { "\($0.name)#\($0.token)" } ?? "") until \(pausedUntil)")
            return
        }
        start(nextAction(sim), sim)
    }

    /// Renews the lease every quarter TTL outside the session (a renewal applied twice is harmless).
    private func keepLeaseAlive(_ sim: KVSimulation) {
        guard let lease, !finishing, sim.now >= keepAliveAt else { return }
        keepAliveAt = sim.now + lease.ttlMillis / KVSimParameters.tickMillis / 4
        keepAliveRequest = sim.sendRequest(from: id, to: target, [b("LEASE"), b("KEEPALIVE"), b("\(lease.id)")])
    }

    // MARK: Choosing operations

    private func nextAction(_ sim: KVSimulation) -> Action {
        guard session != nil else { return .register }
        if let lockName { return nextLockAction(lockName, sim) }
        let key = Self.kvKeys[sim.random.below(Self.kvKeys.count)]
        let roll = sim.random.below(100)
        switch roll {
        case ..<30: return .get(sim.random.chance(250) ? "f-L\(sim.random.below(2))" : key)
        case ..<55: return .set(key, "c\(id)-\(sequence + 1)")
        case ..<72:
            let expected = sim.random.chance(700) ? lastSeen[key] : "c\(sim.random.below(8))-\(sim.random.below(20))"
            return .compareAndSwap(key, expected: expected, new: "c\(id)-\(sequence + 1)")
        case ..<77: return .delete(key)
        default: return .increment(Self.counterKey)
        }
    }

    private func nextLockAction(_ name: String, _ sim: KVSimulation) -> Action {
        guard let lease else { return .grant(ttlMillis: UInt64(sim.random.within(15...30)) * 100) }
        if let stale = staleTokenToTry {
            staleTokenToTry = nil
            return .fencedSet(lock: name, token: stale, key: "f-\(name)", value: "t\(stale)-c\(id)-\(sequence + 1)")
        }
        guard let holding else { return .lock(name, lease: lease.id, wait: sim.random.chance(500)) }
        operationsWhileHolding += 1
        let roll = sim.random.below(100)
        if operationsWhileHolding > 5 || roll < 12 { return .unlock(name, token: holding.token) }
        if roll < 16 { return .revoke(lease.id) }
        if roll < 30 { return .fence("fence-\(name)", token: holding.token) }
        return .fencedSet(lock: name, token: holding.token, key: "f-\(name)", value: "t\(holding.token)-c\(id)-\(sequence + 1)")
    }

    private func arguments(for action: Action) -> [[UInt8]] {
        switch action {
        case .register: return [b("SESSION"), b("REGISTER")]
        case .get(let key): return [b("GET"), b(key)]
        case .set(let key, let value): return [b("SET"), b(key), b(value)]
        case .compareAndSwap(let key, let expected, let new):
            // CASMOD 0 is "only if absent"; CAS compares values.
            return expected.map { [b("CAS"), b(key), b($0), b(new)] } ?? [b("CASMOD"), b(key), b("0"), b(new)]
        case .delete(let key): return [b("DEL"), b(key)]
        case .increment(let key): return [b("INCR"), b(key)]
        case .grant(let ttl): return [b("LEASE"), b("GRANT"), b("\(ttl / 1000).\(ttl % 1000 / 100)")]
        case .revoke(let lease): return [b("LEASE"), b("REVOKE"), b("\(lease)")]
        case .lock(let name, let lease, let wait):
            return [b("LOCK"), b(name), b("LEASE"), b("\(lease)")] + (wait ? [b("WAIT"), b("1500")] : [])
        case .fencedSet(let lock, let token, let key, let value):
            return [b("FENCED"), b(lock), b("\(token)"), b("SET"), b(key), b(value)]
        case .fence(let name, let token): return [b("FENCE"), b(name), b("\(token)")]
        case .unlock(let name, let token): return [b("UNLOCK"), b(name), b("\(token)")]
        }
    }

    private func start(_ action: Action, _ sim: KVSimulation) {
        var arguments = arguments(for: action)
        switch action {
        case .register, .get: break
        default:
            sequence += 1
            arguments = [b("SESSION"), b("\(session ?? 0)"), b("\(sequence)")] + arguments
        }
        var input: KV.Input?
        switch action {
        case .get(let key): input = .get(key)
        case .set(let key, let value): input = .put(key, value)
        case .compareAndSwap(let key, let expected, let new): input = .compareAndSwap(key, expected: expected, new: new)
        case .delete(let key): input = .delete(key)
        case .fencedSet(_, _, let key, let value): input = .put(key, value)
        case .register, .increment, .grant, .revoke, .lock, .fence, .unlock: input = nil
        }
        let call = input.map { sim.kvHistory.call(clientID: id, input: $0, at: sim.historyTime()) }
        var next = Pending(action: action, arguments: arguments, call: call, target: target)
        send(&next, sim)
        pending = next
    }

    private func send(_ current: inout Pending, _ sim: KVSimulation) {
        current.retryAt = nil
        current.attempts += 1
        current.target = target
        current.request = sim.sendRequest(from: id, to: target, current.arguments)
        var timeoutTicks: UInt64 = 60
        if case .lock(_, _, true) = current.action { timeoutTicks += 30 }
        current.deadline = sim.now + timeoutTicks
    }

    // MARK: Replies

    func receive(_ reply: Reply, request: Int, sim: KVSimulation) {
        if request == keepAliveRequest {
            keepAliveRequest = nil
            if case .error(let text) = reply, text.hasPrefix("ERR lease") { loseLease() }
            return
        }
        guard let current = pending, current.request == request, current.retryAt == nil else { return }
        if case .error(let text) = reply {
            let words = text.split(separator: " ")
            switch words.first.map(String.init) ?? "" {
            case "NOTLEADER":
                let hint = words.count > 1 ? UInt64(words[1]).map { NodeID($0) } : nil
                return retry(current, sim, at: hint, delay: hint == nil ? 3 : 1)
            case "TIMEOUT", "UNAVAILABLE":
                return indeterminate(current, sim)
            case "ERR" where text.hasPrefix("ERR server busy"):
                return retry(current, sim, at: current.target, delay: 5)
            default: break
            }
        }
        pending = nil
        let time = sim.historyTime()
        finish(current, reply, at: time, sim)
    }

    /// A definite refusal before the command ran: try again at the leader it names (same `seq`).
    private func retry(_ current: Pending, _ sim: KVSimulation, at hint: NodeID?, delay: UInt64) {
        if case .get = current.action {
            // A read refused before it ran observed nothing: drop it and carry on.
            if let call = current.call { sim.kvHistory.discard(call) }
            pending = nil
            return
        }
        var next = current
        target = hint ?? sim.nodes[sim.random.below(sim.nodes.count)].id
        next.retryAt = sim.now + delay
        pending = next
    }

    /// The attempt may or may not have taken effect: retry the same sequence number elsewhere.
    /// A read with an unknown outcome observed nothing and is dropped.
    private func indeterminate(_ current: Pending, _ sim: KVSimulation) {
        if case .get = current.action {
            if let call = current.call { sim.kvHistory.discard(call) }
            pending = nil
            return
        }
        var next = current
        if case .register = current.action {} else { next.mayHaveApplied = true }
        sim.stats.indeterminateRetries += 1
        target = sim.nodes[sim.random.below(sim.nodes.count)].id
        next.retryAt = sim.now + 2
        pending = next
    }

    private func loseLease() {
        lease = nil
        if let holding { staleTokenToTry = holding.token }
        holding = nil
    }

    /// A definite reply ends the operation.
    private func finish(_ current: Pending, _ reply: Reply, at time: Int64, _ sim: KVSimulation) {
        switch (current.action, reply) {
        case (.register, .integer(let value)): session = UInt64(value)
        case (.get(let key), .bulk(let value)):
            let text = value.map { String(decoding: $0, as: UTF8.self) }
            if let text { lastSeen[key] = text } else { lastSeen[key] = nil }
            record(current, .value(text), at: time, sim)
        case (.set(let key, let value), .simple("OK")):
            lastSeen[key] = value
            record(current, .ok, at: time, sim)
        case (.compareAndSwap(let key, _, let new), .integer(let flag)):
            if flag == 1 { lastSeen[key] = new }
            record(current, .swapped(flag == 1), at: time, sim)
        case (.delete, .integer(let count)): record(current, .existed(count > 0), at: time, sim)
        case (.increment, .integer(let value)): incrementReplies.append(value)
        case (.grant(let ttl), .integer(let value)):
            lease = (UInt64(value), ttl)
            keepAliveAt = sim.now + ttl / KVSimParameters.tickMillis / 4
        case (.revoke, .simple("OK")): loseLease()
        case (.lock(let name, _, _), .integer(let token)):
            holding = (name, UInt64(token))
            operationsWhileHolding = 0
            sim.stats.lockGrants += 1
        case (.lock, .error(let text)) where text.hasPrefix("LOCKED"):
            nextOperationAt = sim.now + UInt64(sim.random.within(3...20))
        case (.fencedSet, .simple("OK")):
            sim.stats.fencedAccepted += 1
            record(current, .ok, at: time, sim)
        case (.fencedSet, .error(let text)) where text.hasPrefix("STALE"):
            sim.stats.fencedStale += 1
            if let call = current.call { sim.kvHistory.discard(call) }
            holding = nil
        case (.fence, .integer): break
        case (.fence, .error(let text)) where text.hasPrefix("STALE"): holding = nil
        case (.unlock, .simple("OK")): holding = nil
        case (.unlock, .error(let text)) where text.hasPrefix("ERR lock is not held"): holding = nil
        case (.revoke, .error(let text)) where text.hasPrefix("ERR lease"): loseLease()
        case (.lock, .error(let text)) where text.hasPrefix("ERR lease"): loseLease()
        default: unexpected(current, reply, sim)
        }
        if case .register = current.action {} else if case .get = current.action {} else { sim.stats.acknowledgedWrites += 1 }
    }

    private func record(_ current: Pending, _ output: KV.Output, at time: Int64, _ sim: KVSimulation) {
        guard let call = current.call else { return }
        sim.kvHistory.returned(call, output: output, at: time)
    }

    /// A reply no correct server gives to this request.
    private func unexpected(_ current: Pending, _ reply: Reply, _ sim: KVSimulation) {
        if case .increment = current.action { unresolvedIncrements += 1 }
        if case .error(let text) = reply, text.hasPrefix("SESSIONEXPIRED") { session = nil }
        sim.clientViolation =
            sim.clientViolation
            ?? KVSimViolation("Replies match requests", "client \(id): \(current.action) got \(reply)")
    }
}

func b(_ text: String) -> [UInt8] { Array(text.utf8) }
