import KVProtocol
import Linearizability

/// Locks with a fenced counter: each client grants itself a lease, takes the lock with it
/// (`LOCK ... WAIT`), presents the token to a fence register, reads the counter, writes
/// counter + 1 with `FENCED lock token SET`, then unlocks and revokes the lease. Now and then a
/// holder stalls past its lease between the read and the write, as a paused process would.
///
/// Fencing makes this safe even when a holder's lease runs out mid-way: a superseded token's
/// write is refused (`-STALE`). The checks afterwards: no two acknowledged increments wrote the
/// same value (one would be lost), the final counter lies between the acknowledged increments
/// and those plus the indeterminate ones, tokens grow with the values they wrote, and the fence
/// register's history is linearizable.
struct LockWorkload: Sendable {
    let context: WorkloadContext

    static let lockName = "faults-lock"
    static let fenceName = "faults-fence"
    static let counterKey = "faults-counter"

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<Limits.lockClients {
                group.addTask { await client(ClientIDs.locks + index) }
            }
        }
    }

    private func client(_ clientID: Int) async {
        let client = context.makeClient(clientID)
        var generator = context.generator(clientID)
        while !context.stop.isSet {
            await oneRound(client, clientID, &generator)
            await pause(millis: Limits.lockPauseMillis, &generator)
        }
        await client.close()
    }

    private func oneRound(_ client: KVClient, _ clientID: Int, _ generator: inout SeededGenerator) async {
        guard let lease = await sessionWrite(client, ["LEASE", "GRANT", String(Limits.lockLeaseSeconds)])?.integerValue else {
            try? await Task.sleep(for: .milliseconds(50))
            return
        }
        await holdLock(client, clientID, lease: lease, &generator)
        // Revoking also leaves the lock's queue if the LOCK request failed while waiting.
        _ = await sessionWrite(client, ["LEASE", "REVOKE", String(lease)])
    }

    private func holdLock(_ client: KVClient, _ clientID: Int, lease: Int, _ generator: inout SeededGenerator) async {
        let recorder = context.recorder
        let token: Int
        do {
            // Asking again with the same lease is idempotent, so the client may resend it.
            let reply = try await client.request(
                ["LOCK", Self.lockName, "LEASE", String(lease), "WAIT", String(Limits.lockWaitMillis)],
                idempotent: true, timeout: Limits.lockRequestTimeout, attemptTimeout: Limits.lockAttemptTimeout)
            guard let granted = reply.integerValue else { return }
            token = granted
            recorder.success(at: recorder.now())
            recorder.update { $0.locksGranted += 1 }
        } catch {
            return
        }
        await fence(client, clientID, token: token)
        guard let current = await readCounter(client, clientID) else { return }
        if Int.random(in: 0..<Limits.lockStallOneIn, using: &generator) == 0 {
            // A holder stalled past its lease (a GC pause, a swapped-out process): by the time
            // it writes, its lease may have ended and another client may hold the lock, so the
            // store must refuse its token.
            recorder.update { $0.lockStalls += 1 }
            try? await Task.sleep(for: Limits.lockStall)
        }
        await increment(client, clientID, token: token, from: current)
        _ = await sessionWrite(client, ["UNLOCK", Self.lockName, String(token)])
    }

    /// A write through the client's session, counted in the availability figures; nil on failure.
    private func sessionWrite(_ client: KVClient, _ arguments: [String]) async -> RESPValue? {
        let recorder = context.recorder
        let called = recorder.now()
        do {
            let reply = try await client.write(arguments)
            recorder.write(called: called, returned: recorder.now(), .ok)
            return reply
        } catch {
            recorder.write(called: called, returned: recorder.now(), WriteResult(error))
            return nil
        }
    }

    private func fence(_ client: KVClient, _ clientID: Int, token: Int) async {
        let recorder = context.recorder
        let called = recorder.now()
        let call = recorder.callFence(client: clientID, .fence(name: Self.fenceName, token: token), at: called)
        do {
            _ = try await client.write(["FENCE", Self.fenceName, String(token)])
            let now = recorder.now()
            recorder.returnFence(call, .ok, at: now)
            recorder.write(called: called, returned: now, .ok)
        } catch where error.code == "STALE" {
            let now = recorder.now()
            recorder.returnFence(call, .stale, at: now)
            recorder.write(called: called, returned: now, .ok)
        } catch {
            if error.outcome == .definite { recorder.discardFence(call) }
            recorder.write(called: called, returned: recorder.now(), WriteResult(error))
        }
    }

    private func readCounter(_ client: KVClient, _ clientID: Int) async -> Int? {
        let recorder = context.recorder
        let call = recorder.callRegister(client: clientID, .get(Self.counterKey), at: recorder.now())
        do {
            let reply = try await client.request(["GET", Self.counterKey], idempotent: true)
            let now = recorder.now()
            recorder.returnRegister(call, .value(reply.isNull ? nil : reply.text), at: now)
            recorder.success(at: now)
            return reply.isNull ? 0 : reply.integerValue
        } catch {
            recorder.discardRegister(call)
            return nil
        }
    }

    private func increment(_ client: KVClient, _ clientID: Int, token: Int, from current: Int) async {
        let recorder = context.recorder
        let value = String(current + 1)
        let called = recorder.now()
        let call = recorder.callRegister(client: clientID, .put(Self.counterKey, value), at: called)
        do {
            _ = try await client.write(["FENCED", Self.lockName, String(token), "SET", Self.counterKey, value])
            let now = recorder.now()
            recorder.returnRegister(call, .ok, at: now)
            recorder.write(called: called, returned: now, .ok)
            recorder.update {
                $0.fencedIncrements.append(FencedIncrement(token: token, value: current + 1, called: called, returned: now))
            }
        } catch where error.code == "STALE" {
            // Refused: nothing written. Not a KV write at all.
            recorder.discardRegister(call)
            recorder.write(called: called, returned: recorder.now(), .ok)
            recorder.update { $0.fencedStale += 1 }
        } catch {
            if error.outcome == .definite {
                recorder.discardRegister(call)
            } else {
                recorder.update { $0.fencedIndeterminate += 1 }
            }
            recorder.write(called: called, returned: recorder.now(), WriteResult(error))
        }
    }
}
