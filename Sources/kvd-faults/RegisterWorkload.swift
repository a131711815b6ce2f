import KVProtocol
import Linearizability

/// Registers: GET, SET and CAS on a few keys from several clients, recorded for the KV model.
///
/// SET is sent without a session, so a timeout leaves it indeterminate (an unknown outcome in
/// the history). Every SET writes a value no other write uses, so a read names the write it saw.
/// The keys change every `Limits.registerKeyEpochSeconds`.
struct RegisterWorkload: Sendable {
    let context: WorkloadContext

    /// Key `index` of the epoch that `time` (harness clock) falls in. Each epoch's keys are new
    /// registers, so each key's history, which the checker searches on its own, stays short:
    /// the cost of checking grows with the run's length, not faster.
    static func key(_ index: Int, at time: Int64) -> String {
        "reg-\(time / (Int64(Limits.registerKeyEpochSeconds) * 1_000_000_000))-\(index)"
    }

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<Limits.registerClients {
                group.addTask { await client(ClientIDs.registers + index) }
            }
        }
    }

    private func client(_ clientID: Int) async {
        let client = context.makeClient(clientID)
        var generator = context.generator(clientID)
        var lastSeen: [String: String] = [:]
        var sequence = 0
        while !context.stop.isSet {
            let key = Self.key(Int.random(in: 0..<Limits.registerKeys, using: &generator), at: context.recorder.now())
            let dice = Int.random(in: 0..<10, using: &generator)
            sequence += 1
            let value = "c\(clientID)-\(sequence)"
            if dice < 5 {
                await get(client, clientID, key, &lastSeen)
            } else if dice < 8 || lastSeen[key] == nil {
                await set(client, clientID, key, value)
            } else {
                await compareAndSwap(client, clientID, key, expected: lastSeen[key] ?? "", new: value)
            }
            await pause(millis: Limits.registerPauseMillis, &generator)
        }
        await client.close()
    }

    private func get(_ client: KVClient, _ clientID: Int, _ key: String, _ lastSeen: inout [String: String]) async {
        let recorder = context.recorder
        let call = recorder.callRegister(client: clientID, .get(key), at: recorder.now())
        do {
            let reply = try await client.request(["GET", key], idempotent: true)
            let now = recorder.now()
            let value = reply.isNull ? nil : reply.text
            recorder.returnRegister(call, .value(value), at: now)
            recorder.success(at: now)
            if let value { lastSeen[key] = value }
        } catch {
            // A read that failed observed nothing.
            recorder.discardRegister(call)
        }
    }

    private func set(_ client: KVClient, _ clientID: Int, _ key: String, _ value: String) async {
        let recorder = context.recorder
        let called = recorder.now()
        let call = recorder.callRegister(client: clientID, .put(key, value), at: called)
        do {
            _ = try await client.request(["SET", key, value], idempotent: false)
            let now = recorder.now()
            recorder.returnRegister(call, .ok, at: now)
            recorder.write(called: called, returned: now, .ok)
        } catch {
            finishFailedWrite(call, error, called: called)
        }
    }

    private func compareAndSwap(_ client: KVClient, _ clientID: Int, _ key: String, expected: String, new: String) async {
        let recorder = context.recorder
        let called = recorder.now()
        let call = recorder.callRegister(client: clientID, .compareAndSwap(key, expected: expected, new: new), at: called)
        do {
            let reply = try await client.request(["CAS", key, expected, new], idempotent: false)
            let now = recorder.now()
            guard let swapped = reply.integerValue else {
                recorder.discardRegister(call)
                recorder.write(called: called, returned: now, .failed)
                return
            }
            recorder.returnRegister(call, .swapped(swapped == 1), at: now)
            recorder.write(called: called, returned: now, .ok)
        } catch {
            finishFailedWrite(call, error, called: called)
        }
    }

    /// A definite failure did not happen; an indeterminate one stays in the history unknown.
    private func finishFailedWrite(
        _ call: HistoryRecorder<Registers.Input, Registers.Output>.Call, _ error: KVClientError, called: Int64
    ) {
        let recorder = context.recorder
        if error.outcome == .definite { recorder.discardRegister(call) }
        recorder.write(called: called, returned: recorder.now(), WriteResult(error))
    }
}
