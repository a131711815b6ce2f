import RaftCore
import Testing

@testable import KVStore

#if canImport(Glibc)
    import Glibc
#endif

/// The lease keeper's heap: earliest due time first (ties by id), lazy deletion of rescheduled
/// and cancelled ids, and a bounded number of stale nodes.
@Suite struct DeadlineHeapTests {
    /// Pops everything due by `nowMillis`, in order.
    func drain(_ heap: inout DeadlineHeap, nowMillis: UInt64 = .max) -> [UInt64] {
        var ids: [UInt64] = []
        while let due = heap.popDue(nowMillis: nowMillis) { ids.append(due.id) }
        return ids
    }

    @Test("ids come out earliest due time first, equal times by id, and only once due")
    func ordering() {
        var heap = DeadlineHeap()
        for (id, due) in [(5, 300), (1, 100), (9, 200), (3, 200), (7, 50), (2, 300)] as [(UInt64, UInt64)] {
            heap.schedule(id, atMillis: due)
        }
        #expect(heap.popDue(nowMillis: 49) == nil)
        #expect(drain(&heap, nowMillis: 200) == [7, 1, 3, 9])
        #expect(heap.count == 2)
        #expect(drain(&heap) == [2, 5])
        #expect(heap.isEmpty)
    }

    @Test("a heap built from a list in one go orders like one built by scheduling")
    func bulkBuild() {
        let deadlines: [(id: UInt64, dueMillis: UInt64)] = (0..<500).map { ($0, ($0 * 7_919) % 1_000) }
        var built = DeadlineHeap(deadlines)
        var scheduled = DeadlineHeap()
        for deadline in deadlines { scheduled.schedule(deadline.id, atMillis: deadline.dueMillis) }
        #expect(built.count == 500)
        #expect(drain(&built) == drain(&scheduled))
    }

    @Test("a rescheduled id comes out once, at its new time; a cancelled one never")
    func lazyDeletion() {
        var heap = DeadlineHeap()
        heap.schedule(1, atMillis: 100)
        heap.schedule(2, atMillis: 200)
        heap.schedule(3, atMillis: 300)
        heap.schedule(1, atMillis: 250)  // later: its node at 100 is now stale
        heap.schedule(3, atMillis: 150)  // earlier
        heap.cancel(2)
        #expect(heap.dueMillis(of: 1) == 250)
        #expect(heap.dueMillis(of: 2) == nil)
        #expect(heap.count == 2)
        #expect(heap.storedNodes == 5, "stale nodes stay until they surface")
        #expect(drain(&heap, nowMillis: 200) == [3])
        #expect(drain(&heap) == [1])
        #expect(heap.storedNodes == 0)
    }

    @Test("rescheduling ids over and over keeps the stale nodes within their bound")
    func staleNodesAreBounded() {
        var heap = DeadlineHeap()
        for id in 0..<10 as Range<UInt64> { heap.schedule(id, atMillis: 1_000) }
        for round in 0..<(10 * DeadlineHeap.staleNodesSlack) {
            heap.schedule(UInt64(round % 10), atMillis: UInt64(2_000 + round))
            #expect(heap.storedNodes <= Self.storedNodesMax(live: heap.count))
        }
        #expect(heap.rebuilds > 0)
        #expect(heap.count == 10)
        #expect(drain(&heap).count == 10)
    }

    @Test("finding that nothing is due looks at one node, however many are stored")
    func nothingDueIsOneStep() {
        var heap = DeadlineHeap((0..<100_000).map { (id: $0, dueMillis: 10_000 + $0) })
        let before = heap.steps
        for now in 0..<1_000 as Range<UInt64> { #expect(heap.popDue(nowMillis: now) == nil) }
        #expect(heap.steps - before == 1_000)
    }

    /// The most nodes a heap with `live` ids may store after a `schedule`.
    static func storedNodesMax(live: Int) -> Int {
        (1 + DeadlineHeap.staleNodesPerLiveMax) * live + DeadlineHeap.staleNodesSlack
    }

    static func environment(_ name: String) -> UInt64? {
        guard let value = getenv(name) else { return nil }
        return UInt64(String(cString: value))
    }

    /// `DEADLINE_HEAP_SEEDS` seeds (default 20) from `DEADLINE_HEAP_FIRST_SEED` (default 1).
    @Test("random schedules, cancels and pops agree with a sorted-array model")
    func matchesSortedArrayModel() {
        let first = Self.environment("DEADLINE_HEAP_FIRST_SEED") ?? 1
        let count = Self.environment("DEADLINE_HEAP_SEEDS") ?? 20
        var rebuilds = 0
        for seed in first..<(first + count) {
            let (failure, seedRebuilds) = Self.runModel(seed: seed)
            rebuilds += seedRebuilds
            if let failure {
                let replay =
                    "DEADLINE_HEAP_FIRST_SEED=\(seed) DEADLINE_HEAP_SEEDS=1 "
                    + "swift test --filter 'DeadlineHeapTests/matchesSortedArrayModel'"
                Issue.record("seed \(seed): \(failure)\nreplay: \(replay)")
                return
            }
        }
        #expect(count == 0 || rebuilds > 0, "the runs never rebuilt the heap, so they did not test it")
    }

    /// One seeded run of 8,000 random operations on a few dozen ids (so that ids are rescheduled
    /// often and, with the long horizon, the heap rebuilds); returns the first disagreement with the model, if any, and
    /// how many rebuilds happened.
    static func runModel(seed: UInt64) -> (failure: String?, rebuilds: Int) {
        var heap = DeadlineHeap()
        let failure = runModel(seed: seed, heap: &heap)
        return (failure, heap.rebuilds)
    }

    static func runModel(seed: UInt64, heap: inout DeadlineHeap) -> String? {
        var random = SplitMix64(seed: seed)
        func below(_ bound: UInt64) -> UInt64 { random.next() % bound }
        /// (dueMillis, id) of every live id, sorted: the first is what must pop next.
        var model: [(dueMillis: UInt64, id: UInt64)] = []
        var now: UInt64 = 0
        let ids = 8 + below(56)
        // Short horizons: superseded nodes surface and are dropped soon. Long ones: they pile up
        // until the heap rebuilds.
        let horizonMillis: UInt64 = below(2) == 0 ? 500 : 20_000
        for step in 0..<8_000 {
            let id = below(ids)
            let operation = below(10)
            switch operation {
            case 0..<7:
                let due = now + below(horizonMillis)
                heap.schedule(id, atMillis: due)
                model.removeAll { $0.id == id }
                model.append((due, id))
                model.sort { ($0.dueMillis, $0.id) < ($1.dueMillis, $1.id) }
            case 7:
                heap.cancel(id)
                model.removeAll { $0.id == id }
            default:
                now += below(60)
                let expected = model.first.flatMap { $0.dueMillis <= now ? $0 : nil }
                let popped = heap.popDue(nowMillis: now)
                if popped?.id != expected?.id || popped?.dueMillis != expected?.dueMillis {
                    let model = String(describing: expected)
                    return "step \(step): popDue(\(now)) gave \(String(describing: popped)), model \(model)"
                }
                if expected != nil { model.removeFirst() }
            }
            if heap.count != model.count { return "step \(step): count \(heap.count), model \(model.count)" }
            if heap.dueMillis(of: id) != model.first(where: { $0.id == id })?.dueMillis {
                return "step \(step): due time of \(id) differs from the model"
            }
            // The bound holds after `schedule` and `cancel`; a pop may leave more stale per live id.
            if operation <= 7, heap.storedNodes > storedNodesMax(live: heap.count) {
                return "step \(step): \(heap.storedNodes) nodes stored for \(heap.count) live ids"
            }
        }
        return nil
    }
}
