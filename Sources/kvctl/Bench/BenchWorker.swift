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
    var endpoint: KVEndpoint
    var connection: BenchConnection?
    var source: BenchOperationSource
    var recorder: BenchRecorder

    init(context: BenchRunContext, index: Int, connection: BenchConnection?) {
        self.context = context
        self.index = index
        endpoint = connection?.endpoint ?? context.target
        self.connection = connection
        source = BenchOperationSource(plan: context.plan, chooser: context.chooser, client: index, level: context.level)
        recorder = BenchRecorder(measureFrom: context.measureFrom)
    }

    var plan: BenchPlan { context.plan }

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

    mutating func succeed(latency: UInt64, at completedAt: UInt64, _ measured: Bool) {
        guard measured else { return }
        recorder.recordSuccess(latencyNanos: latency, completedAt: completedAt)
        context.counters.succeeded.wrappingAdd(1, ordering: .relaxed)
    }

    mutating func fail(_ kind: BenchFailureKind, at completedAt: UInt64, _ measured: Bool) {
        guard measured else { return }
        recorder.recordFailure(kind, completedAt: completedAt)
        context.counters.failed.wrappingAdd(1, ordering: .relaxed)
    }

    /// After `-NOTLEADER id host:port`, the next connection goes to that address; after
    /// `-NOTLEADER unknown unknown`, waits a moment for the election.
    mutating func follow(_ errorText: String) async {
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

    mutating func dropConnection() {
        connection?.close()
        connection = nil
    }

    /// After a connection failed or went silent: the next connection goes to the next endpoint,
    /// since the node may be gone or stopped (a stopped node's kernel still accepts connections).
    /// A follower there names the leader in `-NOTLEADER`. Once per failed connection, however
    /// many of its requests failed.
    mutating func abandonConnection() {
        guard connection != nil else { return }
        dropConnection()
        rotateEndpoint()
    }

    mutating func rotateEndpoint() {
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
            let fresh = try await BenchConnection.connect(to: endpoint, timeout: plan.connectTimeout, credentials: plan.credentials)
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
