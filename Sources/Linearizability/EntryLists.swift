/// The call and return entries of one partition as two doubly linked lists in arrays, sorted by
/// time: the known list holds the calls and returns of operations with a known outcome, the
/// unknown list the calls of operations with an unknown outcome (their returns are at +infinity
/// and would never be reached).
///
/// Node indices follow time order, so "called before that return" is a comparison of indices.
/// Calls sort before returns at equal times, because intervals that touch are concurrent.
struct EntryLists {
    static let knownHead = 0
    let knownTail: Int
    let unknownHead: Int
    let unknownTail: Int

    private(set) var next: [Int]
    private(set) var previous: [Int]
    /// The operation (position in the partition) of each entry node; -1 for sentinels.
    let operation: [Int]
    /// For a known call node, its return node; `returnEntry` for a return node, `unknownEntry` for
    /// an unknown call node, `sentinel` for the four sentinels.
    private let returnOfCall: [Int]
    /// For each unknown operation's position, its index among the unknown operations.
    let unknownRank: [Int]
    let unknownCount: Int
    /// For each unknown operation's position, the class of unknown operations with an equal input.
    let inputClass: [Int]
    /// For each unknown operation's position, how many of its class were called before it.
    let rankInClass: [Int]
    let inputClassCount: Int

    private static let returnEntry = -1
    private static let unknownEntry = -2
    private static let sentinel = -3

    init<Input: Hashable, Output>(_ operations: [Operation<Input, Output>]) {
        var entries: [(time: Int64, isReturn: Bool, operation: Int)] = []
        for (position, operation) in operations.enumerated() {
            entries.append((operation.callTime, false, position))
            if !operation.isOutcomeUnknown { entries.append((operation.returnTime, true, position)) }
        }
        entries.sort { ($0.time, $0.isReturn ? 1 : 0, $0.operation) < ($1.time, $1.isReturn ? 1 : 0, $1.operation) }

        let entryCount = entries.count
        (knownTail, unknownHead, unknownTail) = (entryCount + 1, entryCount + 2, entryCount + 3)
        let nodeCount = entryCount + 4
        next = Array(repeating: -1, count: nodeCount)
        previous = Array(repeating: -1, count: nodeCount)
        var operation = Array(repeating: -1, count: nodeCount)
        var returnOfCall = Array(repeating: EntryLists.sentinel, count: nodeCount)
        var unknownRank = Array(repeating: -1, count: operations.count)
        var callNodeOf = Array(repeating: -1, count: operations.count)
        var (lastKnown, lastUnknown, unknownCount) = (EntryLists.knownHead, entryCount + 2, 0)
        var inputClass = Array(repeating: -1, count: operations.count)
        var rankInClass = Array(repeating: -1, count: operations.count)
        var classOfInput: [Input: Int] = [:]
        var classSizes: [Int] = []
        for (offset, entry) in entries.enumerated() {
            let node = offset + 1
            operation[node] = entry.operation
            if operations[entry.operation].isOutcomeUnknown {
                returnOfCall[node] = EntryLists.unknownEntry
                unknownRank[entry.operation] = unknownCount
                unknownCount += 1
                let inputClassOfEntry = classOfInput[operations[entry.operation].input, default: classSizes.count]
                if inputClassOfEntry == classSizes.count {
                    classOfInput[operations[entry.operation].input] = inputClassOfEntry
                    classSizes.append(0)
                }
                inputClass[entry.operation] = inputClassOfEntry
                rankInClass[entry.operation] = classSizes[inputClassOfEntry]
                classSizes[inputClassOfEntry] += 1
                (next[lastUnknown], previous[node], lastUnknown) = (node, lastUnknown, node)
            } else {
                if entry.isReturn {
                    returnOfCall[node] = EntryLists.returnEntry
                    returnOfCall[callNodeOf[entry.operation]] = node
                } else {
                    callNodeOf[entry.operation] = node
                }
                (next[lastKnown], previous[node], lastKnown) = (node, lastKnown, node)
            }
        }
        (next[lastKnown], previous[knownTail]) = (knownTail, lastKnown)
        (next[lastUnknown], previous[unknownTail]) = (unknownTail, lastUnknown)
        self.operation = operation
        self.returnOfCall = returnOfCall
        self.unknownRank = unknownRank
        self.unknownCount = unknownCount
        self.inputClass = inputClass
        self.rankInClass = rankInClass
        inputClassCount = classSizes.count
    }

    /// Whether `node` is the return entry of a known operation (the known tail never is reached
    /// while a known operation is left, because its return comes first).
    func isReturn(_ node: Int) -> Bool {
        returnOfCall[node] == EntryLists.returnEntry || node == knownTail
    }

    func isUnknownCall(_ node: Int) -> Bool {
        returnOfCall[node] == EntryLists.unknownEntry
    }

    /// Unlinks a call node, and the return node of a known call (dancing links: removed nodes
    /// keep their own links, so `unlift` puts them back in reverse order).
    mutating func lift(_ callNode: Int) {
        unlink(callNode)
        if !isUnknownCall(callNode) { unlink(returnOfCall[callNode]) }
    }

    mutating func unlift(_ callNode: Int) {
        if !isUnknownCall(callNode) { relink(returnOfCall[callNode]) }
        relink(callNode)
    }

    /// The operations called before `returnNode` and not yet linearized, known ones first.
    func callsBefore(_ returnNode: Int) -> [Int] {
        var calls: [Int] = []
        var node = next[EntryLists.knownHead]
        while node != returnNode && node != knownTail {
            if returnOfCall[node] >= 0 { calls.append(operation[node]) }
            node = next[node]
        }
        node = next[unknownHead]
        while node < returnNode {
            calls.append(operation[node])
            node = next[node]
        }
        return calls
    }

    private mutating func unlink(_ node: Int) {
        next[previous[node]] = next[node]
        previous[next[node]] = previous[node]
    }

    private mutating func relink(_ node: Int) {
        next[previous[node]] = node
        previous[next[node]] = node
    }
}
