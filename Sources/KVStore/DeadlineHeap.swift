/// One due time per id, earliest first: a binary min-heap with lazy deletion.
///
/// Rescheduling or cancelling an id does not search the heap. The id's current due time lives in
/// a dictionary together with a stamp; the heap node written by the latest `schedule` carries the
/// same stamp, and every older node of that id is stale and is dropped when it reaches the top.
/// So `schedule` and `cancel` cost O(log n) and O(1), `popDue` O(log n) per node it removes, and
/// finding that nothing is due costs one look at the top.
///
/// Stale nodes are bounded: when there are more than `staleNodesPerLiveMax` per live id (plus
/// `staleNodesSlack`), the next `schedule` or `cancel` rebuilds the heap from the live ids in
/// O(n). Each of those calls adds at most one stale node, so a rebuild comes only after at least
/// 3n + `staleNodesSlack` of them: O(1) per call, amortised. The bound is loose enough that
/// leases renewed every third of their TTL, whose superseded deadlines surface and are dropped
/// within one TTL, never cause a rebuild.
///
/// Ties are broken by id, so the order in which due ids come out depends only on what was
/// scheduled, never on dictionary order: every replay of a simulation pops them identically.
struct DeadlineHeap: Sendable {
    /// One heap node: an id due at `dueMillis`, live only while `stamp` is the id's current stamp.
    struct Node: Hashable, Sendable {
        var dueMillis: UInt64
        var id: UInt64
        var stamp: UInt64

        /// Earlier due time first, then lower id.
        func precedes(_ other: Node) -> Bool {
            (dueMillis, id) < (other.dueMillis, other.id)
        }
    }

    /// What `schedule` last set for a live id.
    private struct Current: Sendable {
        var dueMillis: UInt64
        var stamp: UInt64
    }

    /// Stale nodes per live id the heap keeps before rebuilding without them.
    static let staleNodesPerLiveMax = 3
    /// Stale nodes allowed on top of `staleNodesPerLiveMax` per live id, so that a small heap
    /// does not rebuild all the time.
    static let staleNodesSlack = 1024

    /// The heap in array form: `nodes[i]` precedes or equals its children `2i+1` and `2i+2`.
    private var nodes: [Node] = []
    private var current: [UInt64: Current] = [:]
    private var nextStamp: UInt64 = 0
    /// Nodes looked at or moved so far by `schedule`, `popDue` and rebuilds: a measure of work
    /// that tests can assert on without timing anything.
    private(set) var steps: UInt64 = 0
    /// How many times stale nodes were cleared out by a rebuild.
    private(set) var rebuilds = 0

    /// An empty heap.
    init() {}

    /// A heap holding `deadlines`, built in O(n). Each id must appear at most once.
    init(_ deadlines: [(id: UInt64, dueMillis: UInt64)]) {
        current.reserveCapacity(deadlines.count)
        nodes.reserveCapacity(deadlines.count)
        for deadline in deadlines {
            let stamp = takeStamp()
            precondition(current[deadline.id] == nil, "DeadlineHeap: id \(deadline.id) given twice")
            current[deadline.id] = Current(dueMillis: deadline.dueMillis, stamp: stamp)
            nodes.append(Node(dueMillis: deadline.dueMillis, id: deadline.id, stamp: stamp))
        }
        heapify()
    }

    /// Ids with a due time.
    var count: Int { current.count }

    /// Whether no id has a due time.
    var isEmpty: Bool { current.isEmpty }

    /// Nodes stored, live and stale; after `schedule` or `cancel`, at most
    /// (1 + `staleNodesPerLiveMax`) × `count` + `staleNodesSlack`.
    var storedNodes: Int { nodes.count }

    /// The due time of `id`, or nil if it has none.
    func dueMillis(of id: UInt64) -> UInt64? {
        current[id]?.dueMillis
    }

    /// Makes `id` due at `dueMillis`, replacing any earlier due time it had.
    mutating func schedule(_ id: UInt64, atMillis dueMillis: UInt64) {
        let stamp = takeStamp()
        current[id] = Current(dueMillis: dueMillis, stamp: stamp)
        nodes.append(Node(dueMillis: dueMillis, id: id, stamp: stamp))
        siftUp(from: nodes.count - 1)
        rebuildIfMostlyStale()
    }

    /// Removes `id`'s due time, if any. Its node stays in the heap, stale, until it surfaces.
    mutating func cancel(_ id: UInt64) {
        current[id] = nil
        rebuildIfMostlyStale()
    }

    /// Forgets every id.
    mutating func removeAll() {
        nodes = []
        current = [:]
    }

    /// The live id with the earliest due time at or before `nowMillis` (the lowest id among
    /// equal times), which loses its due time; nil if none is due. Stale nodes met on the way
    /// are discarded.
    mutating func popDue(nowMillis: UInt64) -> (id: UInt64, dueMillis: UInt64)? {
        while let top = nodes.first {
            steps += 1
            let isLive = current[top.id]?.stamp == top.stamp
            guard !isLive || top.dueMillis <= nowMillis else { return nil }
            removeTop()
            if isLive {
                current[top.id] = nil
                return (top.id, top.dueMillis)
            }
        }
        return nil
    }

    // MARK: Heap mechanics

    private mutating func takeStamp() -> UInt64 {
        nextStamp += 1
        return nextStamp
    }

    private mutating func removeTop() {
        let last = nodes.removeLast()
        guard !nodes.isEmpty else { return }
        nodes[0] = last
        siftDown(from: 0)
    }

    private mutating func siftUp(from start: Int) {
        var child = start
        steps += 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard nodes[child].precedes(nodes[parent]) else { return }
            nodes.swapAt(child, parent)
            child = parent
            steps += 1
        }
    }

    private mutating func siftDown(from start: Int) {
        var parent = start
        while true {
            steps += 1
            let left = 2 * parent + 1
            guard left < nodes.count else { return }
            let right = left + 1
            let first = right < nodes.count && nodes[right].precedes(nodes[left]) ? right : left
            guard nodes[first].precedes(nodes[parent]) else { return }
            nodes.swapAt(parent, first)
            parent = first
        }
    }

    /// Rebuilds once stale nodes exceed their bound. Each `schedule` or `cancel` adds at most one
    /// stale node and a rebuild removes them all, costing at most 4/3 of the stale nodes it
    /// removes: O(1) per call, amortised.
    private mutating func rebuildIfMostlyStale() {
        if nodes.count - current.count > Self.staleNodesPerLiveMax * current.count + Self.staleNodesSlack {
            rebuild()
        }
    }

    /// Drops every stale node and restores the heap order, in O(n).
    private mutating func rebuild() {
        steps += UInt64(nodes.count)
        rebuilds += 1
        let live = current
        nodes.removeAll { live[$0.id]?.stamp != $0.stamp }
        heapify()
    }

    /// Floyd's bottom-up construction: sift down every parent, last first. O(n).
    private mutating func heapify() {
        guard nodes.count > 1 else { return }
        for parent in stride(from: nodes.count / 2 - 1, through: 0, by: -1) {
            siftDown(from: parent)
        }
    }
}
