import Linearizability
import Testing

/// The two ways to build a history besides writing operations out: events and a recorder.
@Suite struct HistoryBuildingTests {
    @Test("events become operations timed by position; a call without a return has an unknown outcome")
    func fromEvents() throws {
        let history = try [KVOperation](events: [
            .call(id: 7, clientID: 1, input: .put("x", "a")),
            .call(id: 8, clientID: 2, input: .get("x")),
            .call(id: 9, clientID: 3, input: .put("x", "b")),
            .returned(id: 8, output: .value("a")),
            .returned(id: 7, output: .ok),
        ])
        #expect(history.count == 3)
        #expect(history[0].callTime == 0 && history[0].returnTime == 4 && history[0].output == .ok)
        #expect(history[1].callTime == 1 && history[1].returnTime == 3)
        #expect(history[2].isOutcomeUnknown && history[2].returnTime == Int64.max)
        #expect(checkKV(history).isOK)
    }

    @Test("malformed event lists are refused with the operation id")
    func malformedEvents() {
        #expect(throws: HistoryError.returnWithoutCall(id: 1)) {
            try [KVOperation](events: [.returned(id: 1, output: .ok)])
        }
        #expect(throws: HistoryError.duplicateCall(id: 1)) {
            try [KVOperation](events: [.call(id: 1, clientID: 1, input: .get("x")), .call(id: 1, clientID: 1, input: .get("x"))])
        }
        #expect(throws: HistoryError.duplicateReturn(id: 1)) {
            try [KVOperation](events: [
                .call(id: 1, clientID: 1, input: .get("x")),
                .returned(id: 1, output: .value(nil)),
                .returned(id: 1, output: .value(nil)),
            ])
        }
    }

    @Test("the recorder keeps replies, leaves timed-out calls unknown and drops discarded ones")
    func recorder() {
        var recorder = HistoryRecorder<KV.Input, KV.Output>()
        let put = recorder.call(clientID: 1, input: .put("x", "a"), at: 100)
        let timedOut = recorder.call(clientID: 2, input: .put("x", "b"), at: 110)
        let notLeader = recorder.call(clientID: 3, input: .put("x", "c"), at: 120)
        recorder.returned(put, output: .ok, at: 150)
        recorder.discard(notLeader)
        let history = recorder.operations
        #expect(history.count == 2)
        #expect(history[0].outcome == .returned(.ok, at: 150))
        #expect(history[1].isOutcomeUnknown)
        _ = timedOut
    }
}
