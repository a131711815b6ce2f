import KVProtocol
import Linearizability

/// The negative control: proof that the checker and the harness can see a violation.
///
/// The leader is isolated; once the majority has elected a new leader and acknowledged a new
/// value, a client reads with `READONLY` (local, possibly stale reads) from the isolated old
/// leader and gets the old value. That history is not linearizable, and the checker must say
/// so. If the stale read does not happen (timing), the control is tried again.
struct NegativeControl: Sendable {
    let context: FaultContext
    let clock: HarnessClock

    struct Outcome: Sendable {
        var detected: Bool
        var attempts: Int
        var detail: String
    }

    func run() async -> Outcome {
        var notes: [String] = []
        for attempt in 1...Limits.negativeControlAttempts {
            let result = await attemptOnce(attempt)
            switch result {
            case .detected(let detail):
                return Outcome(detected: true, attempts: attempt, detail: detail)
            case .notDetected(let detail):
                notes.append("attempt \(attempt): \(detail)")
                say("negative control attempt \(attempt): \(detail)")
            }
            _ = try? await context.flushAll()
        }
        return Outcome(detected: false, attempts: Limits.negativeControlAttempts, detail: notes.joined(separator: "; "))
    }

    private enum AttemptResult {
        case detected(String)
        case notDetected(String)
    }

    private func attemptOnce(_ attempt: Int) async -> AttemptResult {
        let nodes = Array(context.topology.nodes)
        guard let (oldLeader, _) = await context.probe.waitForAgreedLeader(among: nodes, timeout: Limits.leaderWaitMax) else {
            return .notDetected("no leader to isolate")
        }
        let oldTerm = await context.probe.info(oldLeader)?.term ?? 0
        let key = "negative-control-\(attempt)"
        let before = "before-\(attempt)"
        let after = "after-\(attempt)"
        var history = HistoryRecorder<Registers.Input, Registers.Output>()
        let clientID = ClientIDs.negativeControl

        // 1. The old value, acknowledged by the leader, and visible there with READONLY.
        let everyone = makeClient(nodes)
        let oldLeaderClient = makeClient([oldLeader])
        defer {
            Task {
                await everyone.close()
                await oldLeaderClient.close()
            }
        }
        let putBefore = history.call(clientID: clientID, input: .put(key, before), at: clock.now())
        guard (try? await everyone.request(["SET", key, before], idempotent: false)) != nil else {
            return .notDetected("the first write failed")
        }
        history.returned(putBefore, output: .ok, at: clock.now())
        guard await readOnly(oldLeaderClient, at: oldLeader, key) == before else {
            return .notDetected("the leader did not show the first write")
        }

        // 2. Isolate the leader and wait for the majority side to elect another.
        let rest = nodes.filter { $0 != oldLeader }
        do {
            try await context.cut(rest.map { (oldLeader, $0) })
        } catch {
            return .notDetected("cannot isolate the leader: \(error)")
        }
        let start = ContinuousClock.now
        var newLeader: Int?
        while newLeader == nil && ContinuousClock.now - start < Limits.negativeControlElectionWait {
            for node in rest {
                if let info = await context.probe.info(node), info.role == "leader", info.term > oldTerm { newLeader = node }
            }
            try? await Task.sleep(for: Limits.infoPollInterval)
        }
        guard newLeader != nil else { return .notDetected("the majority elected no new leader") }

        // 3. The new value, acknowledged by the majority side; then the stale read.
        let majority = makeClient(rest)
        defer { Task { await majority.close() } }
        let putAfter = history.call(clientID: clientID + 1, input: .put(key, after), at: clock.now())
        guard (try? await majority.request(["SET", key, after], idempotent: false)) != nil else {
            return .notDetected("the majority did not acknowledge the second write")
        }
        history.returned(putAfter, output: .ok, at: clock.now())
        let read = history.call(clientID: clientID + 2, input: .get(key), at: clock.now())
        guard let stale = await readOnly(oldLeaderClient, at: oldLeader, key) else {
            return .notDetected("the isolated old leader did not answer the READONLY read")
        }
        history.returned(read, output: .value(stale), at: clock.now())
        _ = try? await context.flushAll()

        let verdict = LinearizabilityChecker(model: Registers(), budget: CheckBudget(maxDuration: Limits.checkDuration))
            .check(history.operations)
        let described = "old leader \(oldLeader) answered \(stale.debugDescription) after \(after.debugDescription) was acknowledged"
        switch verdict {
        case .illegal: return .detected(described)
        case .ok: return .notDetected("checker found it linearizable: \(described)")
        case .unknown(let exhausted): return .notDetected("checker ran out of budget: \(exhausted)")
        }
    }

    /// `READONLY` then `GET key` on one node, over the same pooled connection.
    private func readOnly(_ client: KVClient, at node: Int, _ key: String) async -> String? {
        let endpoint = context.cluster.endpoint(node)
        guard case .simpleString? = try? await client.request(["READONLY"], at: endpoint) else { return nil }
        guard let reply = try? await client.request(["GET", key], at: endpoint) else { return nil }
        if case .error = reply { return nil }
        return reply.isNull ? "" : reply.text
    }

    private func makeClient(_ nodes: [Int]) -> KVClient {
        var configuration = KVClient.Configuration(endpoints: nodes.map(context.cluster.endpoint))
        configuration.requestTimeout = Limits.requestTimeout
        configuration.attemptTimeout = Limits.attemptTimeout
        configuration.idleConnectionsPerEndpointMax = 1
        return KVClient(configuration: configuration)
    }
}
