import KVProtocol

/// Exactly-once increments: `INCR` through each client's session (`SESSION id seq INCR key`),
/// which the client retries with the same sequence number across timeouts and failovers.
///
/// Afterwards the counter must equal the acknowledged increments plus at most the indeterminate
/// ones (whose deadline passed), and no two acknowledged increments may report the same value.
struct SessionWorkload: Sendable {
    let context: WorkloadContext

    static let counterKey = "faults-session-counter"

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<Limits.sessionClients {
                group.addTask { await client(ClientIDs.sessions + index) }
            }
        }
    }

    private func client(_ clientID: Int) async {
        let client = context.makeClient(clientID)
        var generator = context.generator(clientID)
        let recorder = context.recorder
        while !context.stop.isSet {
            let called = recorder.now()
            do {
                let reply = try await client.write(["INCR", Self.counterKey])
                let now = recorder.now()
                recorder.write(called: called, returned: now, .ok)
                if let value = reply.integerValue { recorder.update { $0.sessionReplies.append(value) } }
            } catch {
                let now = recorder.now()
                recorder.write(called: called, returned: now, WriteResult(error))
                if error.outcome == .definite {
                    recorder.update { $0.sessionFailed += 1 }
                } else {
                    recorder.update { $0.sessionIndeterminate += 1 }
                }
            }
            await pause(millis: Limits.sessionPauseMillis, &generator)
        }
        await client.close()
    }
}
