import KVProtocol

/// One client that takes a lock once and means to keep it for the whole run: a lease with a TTL
/// far above any fault, renewed every `Limits.steadyRenewMillis`, and the lock asked again after
/// each renewal (`LOCK` with the same lease is idempotent: it answers the held token). Failovers,
/// partitions, replaced nodes and membership changes must neither end the lease early nor hand
/// the lock to anyone else (etcd lost leases when members were added; this is the check).
///
/// What is asserted uses only what the client can prove. A renewal sent at `t` and acknowledged
/// extended the lease at some moment after `t`, so the lease is alive at least until
/// `t + TTL`: a reply saying the lease is gone, or a lock answered with another token, that
/// arrives before the last acknowledged renewal's send time plus the TTL is a violation. A lease
/// that legitimately lapsed (no renewal acknowledged for a whole TTL) is counted, reported, and
/// the client starts over with a new lease and lock.
struct SteadyHolderWorkload: Sendable {
    let context: WorkloadContext

    static let lockName = "faults-steady-lock"

    /// What one holding (one lease, one lock) has seen.
    private struct Holding {
        var lease: Int
        var token: Int
        /// Send time of the last acknowledged grant or renewal (harness-clock nanoseconds).
        var aliveSince: Int64

        /// Until when the server must keep the lease, whatever happens to the cluster.
        var provablyAliveUntil: Int64 { aliveSince + Int64(Limits.steadyLeaseSeconds) * 1_000_000_000 }
    }

    func run() async {
        let client = context.makeClient(ClientIDs.steady)
        var holding: Holding?
        while !context.stop.isSet {
            if let current = holding {
                holding = await renew(client, current)
            } else {
                holding = await acquire(client)
            }
            try? await Task.sleep(for: .milliseconds(Limits.steadyRenewMillis))
        }
        if let holding { _ = try? await client.write(["LEASE", "REVOKE", String(holding.lease)]) }
        await client.close()
    }

    /// A new lease and the lock with it; nil (try again later) when either fails.
    private func acquire(_ client: KVClient) async -> Holding? {
        let recorder = context.recorder
        let sent = recorder.now()
        guard let lease = try? await client.write(["LEASE", "GRANT", String(Limits.steadyLeaseSeconds)]).integerValue
        else { return nil }
        do {
            let reply = try await client.request(["LOCK", Self.lockName, "LEASE", String(lease)], idempotent: true)
            guard let token = reply.integerValue else { return nil }
            recorder.update { $0.steady.holdings += 1 }
            return Holding(lease: lease, token: token, aliveSince: sent)
        } catch where error.code == "LOCKED" {
            // An earlier lease of this client whose revoke was lost still holds the lock; it
            // lapses within a TTL. Not a violation: this client never believed it held it.
            _ = try? await client.write(["LEASE", "REVOKE", String(lease)])
            return nil
        } catch {
            _ = try? await client.write(["LEASE", "REVOKE", String(lease)])
            return nil
        }
    }

    /// One renewal and one ownership check; nil when the lease is gone (the client starts over).
    private func renew(_ client: KVClient, _ holding: Holding) async -> Holding? {
        let recorder = context.recorder
        var holding = holding
        let deadline = holding.provablyAliveUntil
        let sent = recorder.now()
        do {
            _ = try await client.write(["LEASE", "KEEPALIVE", String(holding.lease)])
            let returned = recorder.now()
            recorder.update { $0.steady.renewals += 1; $0.steady.noteGap(from: holding.aliveSince, to: returned) }
            holding.aliveSince = sent
        } catch where error.kind == .errorReply && error.message.contains("lease \(holding.lease) not found") {
            let returned = recorder.now()
            if returned < deadline {
                recorder.update {
                    $0.steady.violations.append(
                        "lease \(holding.lease) reported gone \(millis(deadline - returned)) ms before the end of its TTL")
                }
            } else {
                recorder.update { $0.steady.lapses += 1 }
            }
            return nil
        } catch {
            recorder.update { $0.steady.failedRenewals += 1 }
            return holding
        }
        do {
            let reply = try await client.request(["LOCK", Self.lockName, "LEASE", String(holding.lease)], idempotent: true)
            if let token = reply.integerValue, token != holding.token {
                recordLostLock(holding, detail: "the lock was granted again with token \(token)")
            }
        } catch where error.code == "LOCKED" {
            recordLostLock(holding, detail: "the lock answered \(error.message)")
        } catch {
            // Unanswered: nothing learned about ownership.
        }
        return holding
    }

    /// A lock seen with another token while this client's lease is provably alive.
    private func recordLostLock(_ holding: Holding, detail: String) {
        let recorder = context.recorder
        guard recorder.now() < holding.provablyAliveUntil else { return }
        recorder.update {
            $0.steady.violations.append("token \(holding.token) of lease \(holding.lease): \(detail) while the lease was alive")
        }
    }
}

/// What the steady holder saw, for its verdict.
struct SteadyHolderTally: Sendable {
    /// Leases granted with the lock taken (1 when the lock never changed hands).
    var holdings = 0
    var renewals = 0
    /// Renewals that got no answer (the client keeps the lease and tries again).
    var failedRenewals = 0
    /// Leases that ended after a whole TTL without an acknowledged renewal (allowed).
    var lapses = 0
    /// Longest time from one acknowledged renewal's send to the next one's reply, nanoseconds.
    var longestGap: Int64 = 0
    var violations: [String] = []

    mutating func noteGap(from: Int64, to: Int64) { longestGap = max(longestGap, to - from) }
}

private func millis(_ nanos: Int64) -> Int64 { nanos / 1_000_000 }
