import KVProtocol

/// The lease behind one `kvctl lock`: acquires the lock with it, keeps it alive, revokes it.
struct LockHolder: Sendable {
    let client: KVClient
    let name: String
    let lease: Int64
    let ttl: Duration
    let events: AsyncStream<LockEvent>.Continuation

    /// Longest single `LOCK ... WAIT` when waiting indefinitely; re-sent until granted.
    static let waitChunkMillis: Int64 = 30_000
    /// Pause before asking for the lock again after an indeterminate failure.
    static let lockRetryPause: Duration = .milliseconds(50)
    /// Pause before retrying a keepalive that failed for a reason that may pass.
    static let keepAliveRetry: Duration = .milliseconds(200)

    /// Waits for the lock (in FIFO order) and reports `.acquired` or `.acquireFailed`.
    ///
    /// `LOCK` is sent without a session: with the same lease it is idempotent by design (a retry
    /// gets the same token, or the same place in the queue), so it can be repeated after any
    /// failure, and a session would serialise it with the revoke that ends the wait.
    func acquire(waitSeconds: Double?) async {
        let deadline = waitSeconds.map { ContinuousClock.now + .milliseconds(Int64($0 * 1000)) }
        while !Task.isCancelled {
            let now = ContinuousClock.now
            if let deadline, now >= deadline {
                events.yield(.acquireFailed(CLIError("timed out after \(waitSeconds ?? 0) s waiting for lock \(name)")))
                return
            }
            let waitMillis = deadline.map { max(1, ($0 - now).milliseconds) } ?? Self.waitChunkMillis
            let wait = Duration.milliseconds(waitMillis)
            do {
                // Not marked idempotent so that a -TIMEOUT (the wait ran out) comes back here at
                // once instead of being re-sent with a wait that no longer fits the deadline.
                let reply = try await client.request(
                    ["LOCK", name, "LEASE", String(lease), "WAIT", String(waitMillis)], idempotent: false,
                    timeout: wait + .seconds(1), attemptTimeout: wait + .seconds(1))
                guard case .integer(let token) = reply else {
                    events.yield(.acquireFailed(CLIError("unexpected reply to LOCK: \(reply)")))
                    return
                }
                events.yield(.acquired(token: token))
                return
            } catch {
                // A definite refusal (e.g. lease not found) ends the wait; anything else (the wait
                // ran out, a failover, a lost connection) is asked again while time remains.
                if error.kind == .errorReply && error.outcome == .definite {
                    events.yield(.acquireFailed(CLIError(describe(error))))
                    return
                }
                try? await Task.sleep(for: Self.lockRetryPause)
            }
        }
    }

    /// Renews the lease about every TTL/3 until cancelled. Reports `.leaseLost` when the server
    /// says the lease is gone, or when it could not be renewed before it would expire (counted
    /// from when the last successful renewal was sent, which is never later than the server's).
    func keepAlive(from grantedAt: ContinuousClock.Instant) async {
        var expiry = grantedAt + ttl
        var interval = ttl / 3
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            let sentAt = ContinuousClock.now
            guard sentAt < expiry else {
                events.yield(.leaseLost("lease \(lease) could not be renewed before it expired"))
                return
            }
            do {
                let reply = try await client.request(
                    ["LEASE", "KEEPALIVE", String(lease)], idempotent: true, timeout: expiry - sentAt)
                let seconds: Int64 = if case .integer(let granted) = reply { granted } else { ttl.seconds }
                expiry = sentAt + .seconds(seconds)
                interval = .seconds(seconds) / 3
            } catch {
                if error.kind == .errorReply && error.outcome == .definite {
                    events.yield(.leaseLost("lease \(lease): \(error.message)"))
                    return
                }
                interval = Self.keepAliveRetry
            }
        }
    }

    /// Revokes the lease (releasing the lock or leaving the queue); failures are ignored, as the
    /// lease then expires on its own within its TTL.
    func release() async {
        _ = try? await client.write(["LEASE", "REVOKE", String(lease)], timeout: Lock.requestTimeout)
    }

    /// Revokes the lease; throws one line if that failed.
    func releaseOrFail() async throws {
        do {
            _ = try await client.write(["LEASE", "REVOKE", String(lease)], timeout: Lock.requestTimeout)
        } catch {
            throw CLIError("could not revoke lease \(lease) (\(describe(error))); lock \(name) is released when it expires")
        }
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// Whole seconds, rounded down.
    var seconds: Int64 {
        components.seconds
    }
}
