import KVProtocol

/// Finds the server to load (a kvd cluster's leader, or the one server given) and checks that it
/// has the commands the workload needs.
enum BenchTarget {
    /// Rounds over the endpoint list while no leader is known (an election).
    static let discoveryRounds = 3
    static let discoveryPause: Duration = .milliseconds(300)

    /// The endpoint to load: the first that answers a `GET` itself, or the leader a follower
    /// names in `-NOTLEADER`.
    static func discover(_ plan: BenchPlan) async throws(BenchError) -> KVEndpoint {
        var lastProblem = "no endpoints"
        let probe = [Array("GET".utf8), Array((plan.keyPrefix + "probe").utf8)]
        for round in 0..<discoveryRounds {
            if round > 0 { try? await Task.sleep(for: discoveryPause) }
            for endpoint in plan.endpoints {
                let connection: BenchConnection
                do {
                    connection = try await BenchConnection.connect(to: endpoint, timeout: plan.connectTimeout, credentials: plan.credentials, tls: plan.tls)
                } catch {
                    lastProblem = error.description
                    continue
                }
                defer { connection.close() }
                switch await connection.send(probe, timeout: plan.requestTimeout) {
                case .success(let reply):
                    guard case .error(let text) = reply.value else { return endpoint }
                    let words = text.split(separator: " ")
                    guard words.first?.uppercased() == "NOTLEADER" else {
                        lastProblem = "\(endpoint) answered -\(text)"
                        continue
                    }
                    if words.count >= 3, let leader = KVEndpoint(words[2]) { return leader }
                    lastProblem = "\(endpoint): no leader known"
                case .failure(let failure):
                    lastProblem = "\(endpoint): \(BenchFailureKind.transport(failure).name)"
                }
            }
        }
        throw .unreachable("no server to benchmark: \(lastProblem)")
    }

    /// Refuses `cas` and `lock` against a server without kvd's extensions (redis-server), and
    /// a lease TTL the server does not accept.
    static func checkSupport(_ plan: BenchPlan, at endpoint: KVEndpoint) async throws(BenchError) {
        let probe: [String]
        switch plan.workload {
        case .put, .get, .mixed: return
        case .cas: probe = ["CAS", plan.keyPrefix + "probe", "expected", "new"]
        case .lock: probe = ["LEASE", "GRANT", String(plan.leaseTTLSeconds)]
        }
        let connection = try await BenchConnection.connect(to: endpoint, timeout: plan.connectTimeout, credentials: plan.credentials, tls: plan.tls)
        defer { connection.close() }
        switch await connection.send(probe.map { Array($0.utf8) }, timeout: plan.requestTimeout) {
        case .success(let reply):
            switch reply.value {
            case .error(let text) where text.lowercased().contains("unknown command"):
                throw .unsupported(
                    "\(endpoint) does not know \(probe[0]) (a kvd extension): the \(plan.workload.rawValue) workload needs kvd")
            case .error(let text):
                throw .unsupported("\(endpoint) refused \(probe.joined(separator: " ")): \(text)")
            case .integer(let lease) where plan.workload == .lock:
                _ = await connection.send(["LEASE", "REVOKE", String(lease)].map { Array($0.utf8) }, timeout: plan.requestTimeout)
            default:
                return
            }
        case .failure(let failure):
            throw .unreachable("\(endpoint): \(BenchFailureKind.transport(failure).name) while checking \(probe[0])")
        }
    }
}
