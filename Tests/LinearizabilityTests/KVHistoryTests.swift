import Linearizability
import Testing

/// Hand-written KV histories, each a classic case with a known verdict.
@Suite struct KVHistoryTests {
    @Test("an empty history and a sequential one are linearizable")
    func sequential() {
        #expect(checkKV([]).isOK)
        let history = [
            op(1, 0, 1, .get("x"), .value(nil)),
            op(1, 2, 3, .put("x", "a"), .ok),
            op(2, 4, 5, .get("x"), .value("a")),
            op(2, 6, 7, .compareAndSwap("x", expected: "a", new: "b"), .swapped(true)),
            op(1, 8, 9, .delete("x"), .existed(true)),
            op(1, 10, 11, .delete("x"), .existed(false)),
            op(2, 12, 13, .compareAndSwap("x", expected: nil, new: "c"), .swapped(true)),
            op(1, 14, 15, .get("x"), .value("c")),
        ]
        #expect(checkKV(history).isOK)
    }

    @Test("a read concurrent with a write may see the old or the new value")
    func readConcurrentWithWrite() {
        let write = op(1, 0, 10, .put("x", "a"), .ok)
        #expect(checkKV([write, op(2, 2, 5, .get("x"), .value(nil))]).isOK)
        #expect(checkKV([write, op(2, 2, 5, .get("x"), .value("a"))]).isOK)
        // Two reads by one client: new then old is impossible once the value was seen.
        let newThenOld = [write, op(2, 1, 2, .get("x"), .value("a")), op(2, 3, 4, .get("x"), .value(nil))]
        #expect(checkKV(newThenOld).isIllegal)
    }

    @Test("intervals that only touch are concurrent")
    func touchingIntervals() {
        // The write returns at 5 and the read is called at 5: either order is allowed.
        let history = [op(1, 0, 5, .put("x", "a"), .ok), op(2, 5, 6, .get("x"), .value(nil))]
        #expect(checkKV(history).isOK)
        let later = [op(1, 0, 5, .put("x", "a"), .ok), op(2, 6, 7, .get("x"), .value(nil))]
        #expect(checkKV(later).isIllegal)
    }

    @Test("a stale read after a completed write is rejected, and the counterexample names it")
    func staleRead() throws {
        let history = [
            op(1, 0, 10, .put("x", "a"), .ok),
            op(1, 11, 20, .put("x", "b"), .ok),
            op(2, 21, 30, .get("x"), .value("a")),
        ]
        let example = try #require(counterexample(checkKV(history)))
        #expect(example.partition == "x")
        #expect(example.longestLinearizablePrefix.map(\.index) == [0, 1])
        #expect(example.unplaceableOperation.index == 2)
        #expect(example.stateAfterPrefix == ["x": "b"])
        #expect(example.description.contains("could not place: #2 client 2 [21, 30] get(\"x\")"))
    }

    @Test("two readers that see two concurrent writes in opposite orders are rejected")
    func writesSeenInOppositeOrders() {
        let history = [
            op(1, 0, 100, .put("x", "a"), .ok),
            op(2, 0, 100, .put("x", "b"), .ok),
            op(3, 10, 20, .get("x"), .value("a")),
            op(3, 30, 40, .get("x"), .value("b")),
            op(4, 10, 20, .get("x"), .value("b")),
            op(4, 30, 40, .get("x"), .value("a")),
        ]
        #expect(checkKV(history).isIllegal)
        // Either reader alone is fine.
        #expect(checkKV(Array(history[0..<4])).isOK)
        #expect(checkKV(Array(history[0..<2] + history[4..<6])).isOK)
    }

    @Test("an acknowledged write that is lost is rejected")
    func lostAcknowledgedWrite() {
        let lost = [op(1, 0, 10, .put("x", "a"), .ok), op(2, 20, 30, .get("x"), .value(nil))]
        #expect(checkKV(lost).isIllegal)
        let lostDelete = [op(1, 0, 10, .put("x", "a"), .ok), op(2, 20, 30, .delete("x"), .existed(false))]
        #expect(checkKV(lostDelete).isIllegal)
    }

    @Test("a CAS that succeeded on a wrong value, or failed on the right one, is rejected")
    func compareAndSwapObservations() {
        let written = op(1, 0, 10, .put("x", "a"), .ok)
        #expect(checkKV([written, op(2, 20, 30, .compareAndSwap("x", expected: "z", new: "b"), .swapped(true))]).isIllegal)
        // A mismatch is a definite rejection that observed the value: recorded and checked.
        #expect(checkKV([written, op(2, 20, 30, .compareAndSwap("x", expected: "a", new: "b"), .swapped(false))]).isIllegal)
        #expect(checkKV([written, op(2, 20, 30, .compareAndSwap("x", expected: "z", new: "b"), .swapped(false))]).isOK)
        // A successful CAS is a write: a later read must see it.
        let swapped = op(2, 20, 30, .compareAndSwap("x", expected: "a", new: "b"), .swapped(true))
        #expect(checkKV([written, swapped, op(3, 40, 50, .get("x"), .value("a"))]).isIllegal)
        #expect(checkKV([written, swapped, op(3, 40, 50, .get("x"), .value("b"))]).isOK)
    }

    @Test("a write with an unknown outcome may take effect, later than its client gave up, or never")
    func unknownOutcomeWrite() {
        let base = [op(1, 0, 10, .put("x", "a"), .ok), unknown(2, 20, .put("x", "b"))]
        #expect(checkKV(base + [op(3, 30, 40, .get("x"), .value("b"))]).isOK, "took effect")
        #expect(checkKV(base + [op(3, 30, 40, .get("x"), .value("a"))]).isOK, "not (yet)")
        let late = [op(3, 30, 40, .get("x"), .value("a")), op(3, 1_000, 1_010, .get("x"), .value("b"))]
        #expect(checkKV(base + late).isOK, "took effect long after the client's timeout")
        let flipFlop = [op(3, 30, 40, .get("x"), .value("b")), op(3, 50, 60, .get("x"), .value("a"))]
        #expect(checkKV(base + flipFlop).isIllegal, "once applied it cannot be undone")
        #expect(checkKV(base + [op(3, 5, 9, .get("x"), .value("b"))]).isIllegal, "it cannot act before its call")
    }

    @Test("a CAS with an unknown outcome takes effect only if the value matched")
    func unknownOutcomeCompareAndSwap() {
        let base = [op(1, 0, 10, .put("x", "a"), .ok), unknown(2, 20, .compareAndSwap("x", expected: "a", new: "b"))]
        #expect(checkKV(base + [op(3, 30, 40, .get("x"), .value("b"))]).isOK)
        #expect(checkKV(base + [op(3, 30, 40, .get("x"), .value("a"))]).isOK)
        let wrongExpectation = [op(1, 0, 10, .put("x", "a"), .ok), unknown(2, 20, .compareAndSwap("x", expected: "z", new: "b"))]
        #expect(checkKV(wrongExpectation + [op(3, 30, 40, .get("x"), .value("b"))]).isIllegal)
    }

    @Test("each key is checked on its own and a violation names its key")
    func partitionsByKey() throws {
        let history = [
            op(1, 0, 10, .put("x", "a"), .ok),
            op(2, 0, 10, .put("y", "a"), .ok),
            op(1, 11, 20, .put("x", "b"), .ok),
            op(2, 11, 20, .get("x"), .value("a")),
            op(3, 30, 40, .get("y"), .value(nil)),
        ]
        let example = try #require(counterexample(checkKV(history)))
        #expect(example.partition == "y")
        #expect(example.partitionOperations.map(\.index) == [1, 4])
        #expect(example.unplaceableOperation.index == 4)
        let partitions = KV().partition(history)
        #expect(partitions.map(\.name) == ["x", "y"])
        #expect(partitions.map(\.operations.count) == [3, 2])
    }

    @Test("a step budget that runs out gives .unknown, never a wrong verdict")
    func budget() throws {
        var rng = SeededGenerator(seed: 7)
        let history = generateKVHistory(GeneratorShape(operationCount: 300, keys: ["x"]), using: &rng)
        let result = checkKV(history, budget: CheckBudget(maxSteps: 10))
        guard case .unknown(let exhausted) = result else {
            Issue.record("expected .unknown, got \(result)")
            return
        }
        #expect(exhausted.stepsUsed == 10)
        #expect(exhausted.partition == "x")
        #expect(checkKV(history, budget: CheckBudget(maxSteps: 1_000_000, maxDuration: .seconds(60))).isOK)
    }
}
