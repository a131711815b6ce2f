import KVProtocol
import Synchronization

/// Live counts shared by a run's connections: for the progress line, and the tickets of a
/// `--requests` run.
final class BenchCounters: Sendable {
    let succeeded = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    /// Requests claimed so far (a `--requests N` run stops at N).
    let claimed = Atomic<Int>(0)
}

/// What every connection of one run shares.
struct BenchRunContext: Sendable {
    let plan: BenchPlan
    let target: KVEndpoint
    let clients: Int
    /// Index of the sweep level (seeds each level's streams differently).
    let level: Int
    let measureFrom: UInt64
    /// Closed loop with `--duration`: when to stop sending.
    let measureUntil: UInt64?
    let counters: BenchCounters
    let chooser: KeyChooser
}

/// One connection's loop: sends operations, judges replies, records what was measured. Owns
/// its connection and recorder; reconnects (following `-NOTLEADER`) after a failure.
struct BenchWorker {
    /// Pause after a failed connect before the next try.
    static let reconnectPause: Duration = .milliseconds(100)
    /// Pause after `-NOTLEADER unknown` (an election is under way).
    static let leaderUnknownPause: Duration = .milliseconds(50)
    /// Open loop: how long after the last request was due a run keeps sending late requests,
    /// beyond the request timeout.
    static let openLoopGraceNanos: UInt64 = 1_000_000_000

    let context: BenchRunContext
    let index: Int
    private var endpoint: KVEndpoint
    private var connection: BenchConnection?
    private var source: BenchOperationSource
    private var recorder: BenchRecorder

    init(context: BenchRunContext, index: Int, connection: BenchConnection?) {
        self.context = context
        self.index = index
        endpoint = connection?.endpoint ?? context.target
        self.connection = connection
        source = BenchOperationSource(plan: context.plan, chooser: context.chooser, client: index, level: context.level)
        recorder = BenchRecorder(measureFrom: context.measureFrom)
    }

    private var plan: BenchPlan { context.plan }

    /// Each request (or batch of `pipeline`) is sent when the previous one was answered.
    mutating func runClosedLoop(pipeline: Int) async -> BenchRecorder {
        while !Task.isCancelled {
            let now = BenchClock.now()
            if let until = context.measureUntil, now >= until { break }
            let measuring = now >= context.measureFrom
            var count = pipeline
            if case .requests(let total) = plan.stop, measuring {
                let first = context.counters.claimed.wrappingAdd(pipeline, ordering: .relaxed).oldValue
                if first >= total { break }
                count = min(pipeline, total - first)
            }
            guard let connection = await connected(measuring: measuring, requests: count) else { continue }
            var operations = (0..<count).map { _ in source.next() }
            if plan.workload == .cas {
                guard await refreshBeliefs(&operations, on: connection) else { continue }
            }
            await perform(operations, on: connection, startedAt: BenchClock.now(), measured: measuring)
        }
        connection?.close()
        return recorder
    }

    /// Requests are due on `schedule`; this connection sends every `workers`-th one, on time or
    /// as soon as it is free, and each latency counts from when the request was due.
    mutating func runOpenLoop(schedule: OpenLoopSchedule, workers: Int) async -> BenchRecorder {
        let timeoutNanos = plan.requestTimeout.benchNanos
        let abandonAt = schedule.lastDue + timeoutNanos + Self.openLoopGraceNanos
        var due = schedule.indexes(worker: index, of: workers).makeIterator()
        while let request = due.next(), !Task.isCancelled {
            let intended = schedule.intendedTime(of: request)
            let now = BenchClock.now()
            if now < intended { try? await Task.sleep(for: .nanoseconds(Int64(intended - now))) }
            if BenchClock.now() > abandonAt {
                recorder.missed += (schedule.isMeasured(request) ? 1 : 0)
                while let rest = due.next() { recorder.missed += schedule.isMeasured(rest) ? 1 : 0 }
                break
            }
            let measured = schedule.isMeasured(request)
            guard let connection = await connected(measuring: measured, requests: 1) else { continue }
            var operations = [source.next()]
            if plan.workload == .cas {
                guard await refreshBeliefs(&operations, on: connection) else { continue }
            }
            await perform(operations, on: connection, startedAt: intended, measured: measured)
        }
        connection?.close()
        return recorder
    }

    /// Sends the operations (a lock cycle alone) and judges each reply.
    private mutating func perform(
        _ operations: [BenchOperation], on connection: BenchConnection, startedAt: UInt64, measured: Bool
    ) async {
        if case .lockCycle(let name) = operations[0] {
            let outcome = await lockCycle(name: name, on: connection)
            let now = BenchClock.now()
            switch outcome {
            case .success: succeed(latency: OpenLoopSchedule.latency(intended: startedAt, completed: now), at: now, measured)
            case .failure(let kind): fail(kind, at: now, measured)
            }
            return
        }
        let results = await connection.send(operations.map(source.request), timeout: plan.requestTimeout)
        for (operation, result) in zip(operations, results) {
            switch result {
            case .success(let reply):
                if case .error(let text) = reply.value {
                    fail(.errorReply(text), at: reply.receivedAt, measured)
                    await follow(text)
                    continue
                }
                if !source.learn(operation, reply: reply.value), measured { recorder.casMisses += 1 }
                succeed(
                    latency: OpenLoopSchedule.latency(intended: startedAt, completed: reply.receivedAt),
                    at: reply.receivedAt, measured)
            case .failure(let failure):
                fail(.transport(failure), at: BenchClock.now(), measured)
                abandonConnection()
            }
        }
    }

    /// Reads the value of every CAS key this client has no belief about (not measured), and
    /// creates missing keys, so that swaps can succeed. False if the connection failed.
    private mutating func refreshBeliefs(_ operations: inout [BenchOperation], on connection: BenchConnection) async -> Bool {
        for operation in operations {
            guard let key = source.keyNeedingRefresh(operation) else { continue }
            switch await connection.send([Array("GET".utf8), source.key(key)], timeout: plan.requestTimeout) {
            case .success(let reply):
                if let value = reply.value.bytes {
                    source.believe(key: key, value: value)
                } else if reply.value.isNull {
                    let create: [[UInt8]] = [Array("SET".utf8), source.key(key), source.value]
                    if case .success(let created) = await connection.send(create, timeout: plan.requestTimeout),
                        created.value == .ok
                    {
                        source.believe(key: key, value: source.value)
                    }
                }
            case .failure(let failure):
                fail(.transport(failure), at: BenchClock.now(), false)
                abandonConnection()
                return false
            }
        }
        operations = operations.map(source.refreshed)
        return true
    }

    /// One lock cycle: grant a lease, take the lock with it (waiting in the server's queue),
    /// release the lock, revoke the lease. A failure part-way revokes the lease if one was granted.
    private mutating func lockCycle(name: Int, on connection: BenchConnection) async -> Result<Void, BenchFailureKind> {
        let lockName = source.lockName(name)
        let lease: Int64
        switch await step(["LEASE", "GRANT", String(plan.leaseTTLSeconds)], on: connection) {
        case .success(.integer(let id)): lease = id
        case .success: return .failure(Self.unexpectedReply)
        case .failure(let kind): return .failure(kind)
        }
        let waitTimeout = plan.requestTimeout + .milliseconds(plan.lockWaitMilliseconds)
        let token: Int64
        switch await step(
            [Array("LOCK".utf8), lockName] + ["LEASE", String(lease), "WAIT", String(plan.lockWaitMilliseconds)].map { Array($0.utf8) },
            on: connection, timeout: waitTimeout)
        {
        case .success(.integer(let granted)): token = granted
        case .success:
            await revoke(lease, on: connection)
            return .failure(Self.unexpectedReply)
        case .failure(let kind):
            await revoke(lease, on: connection)
            return .failure(kind)
        }
        if case .failure(let kind) = await step([Array("UNLOCK".utf8), lockName, Array(String(token).utf8)], on: connection) {
            await revoke(lease, on: connection)
            return .failure(kind)
        }
        if case .failure(let kind) = await step(["LEASE", "REVOKE", String(lease)], on: connection) {
            return .failure(kind)
        }
        return .success(())
    }

    static let unexpectedReply = BenchFailureKind(name: "unexpected reply", indeterminate: false)

    private mutating func revoke(_ lease: Int64, on connection: BenchConnection) async {
        guard connection.isActive else { return }
        _ = await connection.send(["LEASE", "REVOKE", String(lease)].map { Array($0.utf8) }, timeout: plan.requestTimeout)
    }

    private mutating func step(_ words: [String], on connection: BenchConnection) async -> Result<RESPValue, BenchFailureKind> {
        await step(words.map { Array($0.utf8) }, on: connection)
    }

    private mutating func step(
        _ request: [[UInt8]], on connection: BenchConnection, timeout: Duration? = nil
    ) async -> Result<RESPValue, BenchFailureKind> {
        switch await connection.send(request, timeout: timeout ?? plan.requestTimeout) {
        case .success(let reply):
            if case .error(let text) = reply.value {
                await follow(text)
                return .failure(.errorReply(text))
            }
            return .success(reply.value)
        case .failure(let failure):
            abandonConnection()
            return .failure(.transport(failure))
        }
    }

    private mutating func succeed(latency: UInt64, at completedAt: UInt64, _ measured: Bool) {
        guard measured else { return }
        recorder.recordSuccess(latencyNanos: latency, completedAt: completedAt)
        context.counters.succeeded.wrappingAdd(1, ordering: .relaxed)
    }

    private mutating func fail(_ kind: BenchFailureKind, at completedAt: UInt64, _ measured: Bool) {
        guard measured else { return }
        recorder.recordFailure(kind, completedAt: completedAt)
        context.counters.failed.wrappingAdd(1, ordering: .relaxed)
    }

    /// After `-NOTLEADER id host:port`, the next connection goes to that address; after
    /// `-NOTLEADER unknown unknown`, waits a moment for the election.
    private mutating func follow(_ errorText: String) async {
        let words = errorText.split(separator: " ")
        guard words.first?.uppercased() == "NOTLEADER" else { return }
        if words.count >= 3, let leader = KVEndpoint(words[2]) {
            if leader != endpoint {
                endpoint = leader
                dropConnection()
            }
        } else {
            try? await Task.sleep(for: Self.leaderUnknownPause)
        }
    }

    private mutating func dropConnection() {
        connection?.close()
        connection = nil
    }

    /// After a connection failed or went silent: the next connection goes to the next endpoint,
    /// since the node may be gone or stopped (a stopped node's kernel still accepts connections).
    /// A follower there names the leader in `-NOTLEADER`. Once per failed connection, however
    /// many of its requests failed.
    private mutating func abandonConnection() {
        guard connection != nil else { return }
        dropConnection()
        rotateEndpoint()
    }

    private mutating func rotateEndpoint() {
        let endpoints = plan.endpoints
        if let position = endpoints.firstIndex(of: endpoint) {
            endpoint = endpoints[(position + 1) % endpoints.count]
        } else {
            // A leader learnt from -NOTLEADER that is not in the list: start over at the list.
            endpoint = endpoints[0]
        }
    }

    /// The connection, reconnecting if it was lost; nil (after a pause, the `requests` about to
    /// be sent counted as `unreachable`) if no connection could be made, trying the next
    /// endpoint next time.
    private mutating func connected(measuring: Bool, requests: Int) async -> BenchConnection? {
        if let connection, connection.isActive { return connection }
        dropConnection()
        do {
            let fresh = try await BenchConnection.connect(to: endpoint, timeout: plan.connectTimeout)
            connection = fresh
            return fresh
        } catch {
            for _ in 0..<requests { fail(.unreachable, at: BenchClock.now(), measuring) }
            rotateEndpoint()
            try? await Task.sleep(for: Self.reconnectPause)
            return nil
        }
    }
}
