import Testing

@testable import RaftCore

// A small deterministic test network for the Raft paper tests: N real `RaftNode`s over
// `MemoryLogStorage`, messages held in one FIFO queue and delivered (or dropped) on command, and
// every `Ready` handled exactly as its contract says: send what may leave early, persist (synced
// when `mustSync`), send the rest, apply, advance. The `Ready` contract is checked on every
// cycle, so every test that runs a cluster also checks it.

// MARK: - Building blocks

/// Bytes of a text command.
func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// A command entry.
func entry(_ index: UInt64, term: UInt64, _ text: String = "x") -> Entry {
    Entry(term: Term(term), index: LogIndex(index), payload: .command(bytes(text)))
}

/// A contiguous log starting at index 1 with the given terms, e.g. `[1, 1, 2]`.
func logWithTerms(_ terms: [UInt64], from first: UInt64 = 1) -> [Entry] {
    terms.enumerated().map { offset, term in entry(first + UInt64(offset), term: term, "t\(term)i\(first + UInt64(offset))") }
}

/// A configuration with small, round numbers: election timeout 10 ticks, heartbeat 1 tick.
func makeConfiguration(_ id: NodeID, _ tweak: (inout RaftConfiguration) -> Void = { _ in }) -> RaftConfiguration {
    var configuration = RaftConfiguration(id: id)
    configuration.electionTimeoutTicks = 10
    configuration.heartbeatIntervalTicks = 1
    tweak(&configuration)
    return configuration
}

/// A node built directly from a persistent state (for single-node paper tests with forged messages).
func makeNode(
    _ id: NodeID, voters: Set<NodeID>, learners: Set<NodeID> = [], state: PersistentState = PersistentState(),
    applied: LogIndex = .zero, seed: UInt64 = 1, _ tweak: (inout RaftConfiguration) -> Void = { _ in }
) -> RaftNode {
    do {
        return try RaftNode(
            configuration: makeConfiguration(id, tweak), state: state,
            bootstrap: ClusterMembership(voters: voters, learners: learners), appliedIndex: applied, seed: seed)
    } catch {
        fatalError("cannot build node \(id): \(error)")
    }
}

extension Ready {
    /// Every message of this `Ready`, in the order a driver sends them: those that may leave
    /// before persisting, then the others.
    var allMessages: [Message] { messagesBeforePersist + messages }
}

extension RaftNode {
    /// Takes one `Ready` and advances at once (a driver whose disk always keeps up).
    @discardableResult
    mutating func cycle() -> Ready {
        let ready = takeReady()
        advance(ready)
        return ready
    }

    /// Cycles until there is nothing left and returns every message sent.
    @discardableResult
    mutating func drainMessages() -> [Message] {
        var messages: [Message] = []
        var rounds = 0
        while hasReady {
            messages += cycle().allMessages
            rounds += 1
            if rounds > 1000 {
                Issue.record("node \(id) never ran out of Ready")
                break
            }
        }
        return messages
    }

    /// Steps a message that must be well formed.
    mutating func deliver(_ message: Message, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try step(message)
        } catch {
            Issue.record("unexpected StepError \(error) for \(message)", sourceLocation: sourceLocation)
        }
    }

    mutating func tick(times: Int) {
        for _ in 0..<times { tick() }
    }

    /// Forces this node to win an election in a cluster of `voters` by forging granted votes
    /// from every other voter; returns the messages the new leader sent.
    @discardableResult
    mutating func becomeLeaderForTest() -> [Message] {
        startElection(preVote: false, isLeadershipTransfer: false)
        for voter in log.membership.voters.sorted() where voter != id {
            deliver(.voteResponse(from: voter, to: id, term: currentTerm, granted: true))
        }
        precondition(isLeader, "forged votes did not make \(id) leader")
        return drainMessages()
    }
}

// MARK: - Message builders and accessors

extension Message {
    static func requestVote(
        from: NodeID, to: NodeID, term: UInt64, lastIndex: UInt64, lastTerm: UInt64, preVote: Bool = false,
        transfer: Bool = false
    ) -> Message {
        Message(
            from: from, to: to, term: Term(term),
            body: .requestVote(
                RequestVote(
                    lastLogIndex: LogIndex(lastIndex), lastLogTerm: Term(lastTerm), isPreVote: preVote,
                    isLeadershipTransfer: transfer)))
    }

    static func voteResponse(from: NodeID, to: NodeID, term: Term, granted: Bool, preVote: Bool = false) -> Message {
        Message(
            from: from, to: to, term: term,
            body: .requestVoteResponse(RequestVoteResponse(voteGranted: granted, isPreVote: preVote)))
    }

    static func append(
        from: NodeID, to: NodeID, term: UInt64, prevIndex: UInt64, prevTerm: UInt64, entries: [Entry] = [],
        commit: UInt64 = 0, round: UInt64 = 0
    ) -> Message {
        Message(
            from: from, to: to, term: Term(term),
            body: .appendEntries(
                AppendEntries(
                    prevLogIndex: LogIndex(prevIndex), prevLogTerm: Term(prevTerm), entries: entries,
                    leaderCommit: LogIndex(commit), round: round)))
    }

    static func appendResponse(
        from: NodeID, to: NodeID, term: Term, match: LogIndex, round: UInt64 = 0
    ) -> Message {
        Message(
            from: from, to: to, term: term,
            body: .appendEntriesResponse(AppendEntriesResponse(success: true, matchIndex: match, round: round)))
    }

    var appendEntries: AppendEntries? {
        if case .appendEntries(let value) = body { return value }
        return nil
    }
    var appendResponse: AppendEntriesResponse? {
        if case .appendEntriesResponse(let value) = body { return value }
        return nil
    }
    var requestVote: RequestVote? {
        if case .requestVote(let value) = body { return value }
        return nil
    }
    var voteResponse: RequestVoteResponse? {
        if case .requestVoteResponse(let value) = body { return value }
        return nil
    }
    var installSnapshot: InstallSnapshot? {
        if case .installSnapshot(let value) = body { return value }
        return nil
    }
    var installSnapshotResponse: InstallSnapshotResponse? {
        if case .installSnapshotResponse(let value) = body { return value }
        return nil
    }
    var isTimeoutNow: Bool {
        if case .timeoutNow = body { return true }
        return false
    }
    var readIndexRequest: ReadIndexRequest? {
        if case .readIndexRequest(let value) = body { return value }
        return nil
    }
}

// MARK: - The cluster

/// A deterministic in-memory cluster of real nodes. Nothing happens unless a test asks:
/// `tick`, `deliverAll`, `deliver(where:)`, `settle`.
struct Cluster {
    var nodes: [NodeID: RaftNode] = [:]
    var storage: [NodeID: MemoryLogStorage] = [:]
    /// Every entry each node applied, in order (the state machine is this list).
    var applied: [NodeID: [Entry]] = [:]
    /// The state machine's applied index (moves on apply and on snapshot restore).
    var appliedIndex: [NodeID: LogIndex] = [:]
    /// Snapshots each node installed, with the bytes it received for them.
    var installedSnapshots: [NodeID: [Snapshot]] = [:]
    /// The application state each node serves when a follower needs a snapshot (set by `compact`).
    var stateBytes: [NodeID: [UInt8]] = [:]
    /// Bytes of the snapshot each node is receiving.
    var incomingBytes: [NodeID: [UInt8]] = [:]
    var readStates: [NodeID: [ReadState]] = [:]
    /// Sent and not yet delivered, oldest first.
    var queue: [Message] = []
    /// Every message delivered so far (for counting round trips).
    var delivered: [Message] = []
    /// Every `Ready` each node produced, oldest first.
    var readies: [NodeID: [Ready]] = [:]
    /// Links that drop messages, as (from, to).
    var blocked: Set<Link> = []
    /// Messages for which this returns true are dropped when they would be delivered.
    var dropIf: (Message) -> Bool = { _ in false }
    let bootstrap: ClusterMembership
    let tweak: (inout RaftConfiguration) -> Void

    struct Link: Hashable {
        var from: NodeID
        var to: NodeID
    }

    /// Starts a cluster of fresh nodes. `members` are the voters (and learners) of the bootstrap
    /// membership; `extra` are nodes that exist but are not members yet (to be added later).
    init(
        voters: [NodeID], learners: [NodeID] = [], extra: [NodeID] = [], states: [NodeID: PersistentState] = [:],
        _ tweak: @escaping (inout RaftConfiguration) -> Void = { _ in }
    ) {
        bootstrap = ClusterMembership(voters: Set(voters), learners: Set(learners))
        self.tweak = tweak
        for id in voters + learners + extra {
            let membership =
                extra.contains(id) ? ClusterMembership(voters: [], learners: [id]) : bootstrap
            let state = states[id] ?? PersistentState()
            storage[id] = MemoryLogStorage(state)
            nodes[id] = makeNode(id, state: state, membership: membership)
            applied[id] = []
            appliedIndex[id] = .zero
        }
    }

    func makeNode(_ id: NodeID, state: PersistentState, membership: ClusterMembership) -> RaftNode {
        do {
            return try RaftNode(
                configuration: makeConfiguration(id, tweak), state: state, bootstrap: membership,
                appliedIndex: state.snapshot?.metadata.lastIncludedIndex ?? .zero, seed: 0xC0FFEE &+ id.rawValue)
        } catch {
            fatalError("cannot build node \(id): \(error)")
        }
    }

    var ids: [NodeID] { nodes.keys.sorted() }

    subscript(_ id: NodeID) -> RaftNode {
        get { nodes[id]! }
        set { nodes[id] = newValue }
    }

    /// The nodes that think they lead, highest term first.
    var leaders: [NodeID] {
        ids.filter { nodes[$0]!.isLeader }.sorted { nodes[$0]!.currentTerm > nodes[$1]!.currentTerm }
    }

    // MARK: Ready cycles

    /// Handles every `Ready` of `id` as the contract says, checking the contract as it goes.
    mutating func drain(_ id: NodeID, sourceLocation: SourceLocation = #_sourceLocation) {
        var rounds = 0
        while nodes[id]!.hasReady {
            rounds += 1
            if rounds > 10_000 {
                Issue.record("node \(id) never ran out of Ready", sourceLocation: sourceLocation)
                return
            }
            let ready = nodes[id]!.takeReady()
            readies[id, default: []].append(ready)
            handle(ready, on: id, sourceLocation: sourceLocation)
            nodes[id]!.advance(ready)
        }
    }

    private mutating func handle(_ ready: Ready, on id: NodeID, sourceLocation: SourceLocation) {
        // 0. Send what may leave before persisting, checked against the disk as it was before.
        checkBeforePersist(ready, storage[id]!.durable, sourceLocation: sourceLocation)
        for message in ready.messagesBeforePersist {
            queue.append(fillSnapshotChunk(message))
        }
        // 1. Write received chunks; persist (synced when asked).
        for chunk in ready.snapshotChunks {
            if chunk.offset == 0 { incomingBytes[id] = [] }
            if incomingBytes[id]?.count != chunk.offset {
                Issue.record("node \(id) got a chunk at \(chunk.offset) out of order", sourceLocation: sourceLocation)
            }
            incomingBytes[id, default: []] += chunk.data
        }
        do {
            try storage[id]!.persist(
                hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot, sync: ready.mustSync)
        } catch {
            Issue.record("node \(id) could not persist its Ready: \(error)", sourceLocation: sourceLocation)
        }
        let durable = storage[id]!.durable
        // 2. Send, checking that what each message depends on is durable.
        for message in ready.messages {
            checkDurable(message, durable, sourceLocation: sourceLocation)
            queue.append(fillSnapshotChunk(message))
        }
        // 3. Restore, then apply committed entries in order; each is durable already.
        if let snapshot = ready.snapshot {
            installedSnapshots[id, default: []].append(Snapshot(metadata: snapshot.metadata, data: incomingBytes[id] ?? []))
            stateBytes[id] = incomingBytes[id]
            incomingBytes[id] = nil
            appliedIndex[id] = snapshot.metadata.lastIncludedIndex
            applied[id] = []
        }
        let durableLast = durable.entries.last?.index ?? durable.snapshot?.metadata.lastIncludedIndex ?? .zero
        for entry in ready.committedEntries {
            if entry.index != appliedIndex[id]!.next {
                Issue.record(
                    "node \(id) applies \(entry.index) after \(appliedIndex[id]!)", sourceLocation: sourceLocation)
            }
            if entry.index > durableLast || !durable.entries.contains(entry) {
                Issue.record(
                    "node \(id) applies entry \(entry.index) that is not durable (durable last \(durableLast))",
                    sourceLocation: sourceLocation)
            }
            applied[id, default: []].append(entry)
            appliedIndex[id] = entry.index
        }
        // 4. Reads.
        readStates[id, default: []] += ready.readStates
    }

    /// The driver's part of InstallSnapshot: a chunk RaftCore asked for gets its bytes from the
    /// state the sender serves.
    private func fillSnapshotChunk(_ message: Message) -> Message {
        guard case .installSnapshot(var chunk) = message.body else { return message }
        let state = stateBytes[message.from] ?? []
        let start = min(chunk.offset, state.count)
        let end = min(start + nodes[message.from]!.configuration.snapshotChunkBytes, state.count)
        chunk.data = Array(state[start..<end])
        chunk.done = end == state.count
        var filled = message
        filled.body = .installSnapshot(chunk)
        return filled
    }

    /// Messages sent before persisting are a leader's AppendEntries, InstallSnapshot and
    /// TimeoutNow, vouch for nothing not yet durable, and never come with a new term or vote.
    private func checkBeforePersist(_ ready: Ready, _ durable: PersistentState, sourceLocation: SourceLocation) {
        guard !ready.messagesBeforePersist.isEmpty else { return }
        if let hard = ready.hardState,
            hard.currentTerm != durable.hardState.currentTerm || hard.votedFor != durable.hardState.votedFor
        {
            Issue.record(
                "messages sent before persisting a new term or vote \(hard): \(ready.messagesBeforePersist)",
                sourceLocation: sourceLocation)
        }
        for message in ready.messagesBeforePersist {
            switch message.body {
            case .appendEntries, .installSnapshot, .timeoutNow:
                break
            case .requestVote, .requestVoteResponse, .appendEntriesResponse, .installSnapshotResponse,
                .readIndexRequest, .readIndexResponse, .forwardedProposal, .forwardedProposalRefused:
                Issue.record("\(message) is no leader's replication but was sent before persisting", sourceLocation: sourceLocation)
            }
            checkDurable(message, durable, sourceLocation: sourceLocation)
        }
    }

    /// A message may leave only once the term, vote and entries it vouches for are durable.
    private func checkDurable(_ message: Message, _ durable: PersistentState, sourceLocation: SourceLocation) {
        let hard = durable.hardState
        switch message.body {
        case .requestVote(let request) where request.isPreVote:
            break
        case .requestVoteResponse(let response) where response.isPreVote:
            break
        case .requestVoteResponse(let response) where response.voteGranted:
            if hard.currentTerm != message.term || hard.votedFor != message.to {
                Issue.record(
                    "vote for \(message.to) in term \(message.term) sent before it was durable (\(hard))",
                    sourceLocation: sourceLocation)
            }
        case .appendEntriesResponse(let response) where response.success:
            let last = durable.entries.last?.index ?? durable.snapshot?.metadata.lastIncludedIndex ?? .zero
            if response.matchIndex > last {
                Issue.record(
                    "node \(message.from) acknowledged \(response.matchIndex) with only \(last) durable",
                    sourceLocation: sourceLocation)
            }
            fallthrough
        default:
            if message.term > hard.currentTerm {
                Issue.record(
                    "message in term \(message.term) sent before the term was durable (\(hard.currentTerm))",
                    sourceLocation: sourceLocation)
            }
        }
    }

    mutating func drainAll() {
        for id in ids { drain(id) }
    }

    // MARK: Delivery

    /// Delivers one message now (dropped if its link is blocked), then drains the recipient.
    mutating func deliver(_ message: Message) {
        guard !blocked.contains(Link(from: message.from, to: message.to)), nodes[message.to] != nil, !dropIf(message)
        else { return }
        delivered.append(message)
        nodes[message.to]!.deliver(message)
        drain(message.to)
    }

    /// Delivers queued messages (and whatever they cause) until the network is quiet.
    /// Returns how many were delivered.
    @discardableResult
    /// Messages matching `holding` stay queued (delayed, not lost) for a later delivery.
    mutating func deliverAll(
        holding: (Message) -> Bool = { _ in false }, limit: Int = 100_000,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> Int {
        drainAll()
        var count = 0
        while let position = queue.firstIndex(where: { !holding($0) }) {
            count += 1
            if count > limit {
                Issue.record("network never went quiet", sourceLocation: sourceLocation)
                return count
            }
            deliver(queue.remove(at: position))
        }
        return count
    }

    /// Delivers only the queued messages matching `predicate`, in order (not what they cause);
    /// the others stay queued. Returns what was delivered.
    @discardableResult
    mutating func deliver(where predicate: (Message) -> Bool) -> [Message] {
        drainAll()
        let chosen = queue.filter(predicate)
        queue.removeAll(where: predicate)
        for message in chosen { deliver(message) }
        return chosen
    }

    /// Drops queued messages matching `predicate` (all of them by default).
    @discardableResult
    mutating func drop(where predicate: (Message) -> Bool = { _ in true }) -> [Message] {
        drainAll()
        let chosen = queue.filter(predicate)
        queue.removeAll(where: predicate)
        return chosen
    }

    /// Ticks every node `times` times, delivering everything after each tick.
    mutating func tick(_ times: Int = 1) {
        for _ in 0..<times {
            for id in ids { nodes[id]!.tick() }
            deliverAll()
        }
    }

    /// Ticks only `id`, without delivering.
    mutating func tick(_ id: NodeID, _ times: Int = 1) {
        for _ in 0..<times { nodes[id]!.tick() }
        drain(id)
    }

    // MARK: Faults

    /// Cuts `id` off from every other node in both directions.
    mutating func isolate(_ id: NodeID) {
        for other in ids where other != id {
            blocked.insert(Link(from: id, to: other))
            blocked.insert(Link(from: other, to: id))
        }
    }

    /// Cuts the link between `a` and `b` in both directions.
    mutating func cut(_ a: NodeID, _ b: NodeID) {
        blocked.insert(Link(from: a, to: b))
        blocked.insert(Link(from: b, to: a))
    }

    /// Splits the cluster into groups that cannot reach each other (nodes not named are alone).
    mutating func partition(_ groups: [[NodeID]]) {
        blocked.removeAll()
        for a in ids {
            for b in ids where a != b {
                if !groups.contains(where: { $0.contains(a) && $0.contains(b) }) { blocked.insert(Link(from: a, to: b)) }
            }
        }
    }

    mutating func heal() {
        blocked.removeAll()
        dropIf = { _ in false }
    }

    /// Makes `id` campaign (again, up to `attempts` times, as after an election timeout) until it
    /// wins, delivering everything in between. Returns whether it won.
    @discardableResult
    mutating func campaign(_ id: NodeID, attempts: Int = 3) -> Bool {
        for _ in 0..<attempts {
            nodes[id]!.campaign()
            deliverAll()
            if nodes[id]!.isLeader { return true }
        }
        return false
    }

    /// Crashes `id` (its unsynced writes are lost) and restarts it from storage.
    mutating func restart(_ id: NodeID, membership: ClusterMembership? = nil) {
        storage[id]!.crash()
        queue.removeAll { $0.to == id }
        let state: PersistentState
        do { state = try storage[id]!.load() } catch { fatalError("load failed: \(error)") }
        nodes[id] = makeNode(id, state: state, membership: membership ?? bootstrap)
        appliedIndex[id] = state.snapshot?.metadata.lastIncludedIndex ?? .zero
        applied[id] = []
    }

    // MARK: Conveniences

    /// Makes `id` campaign and delivers everything; `id` must win.
    mutating func elect(_ id: NodeID, sourceLocation: SourceLocation = #_sourceLocation) {
        nodes[id]!.campaign()
        deliverAll()
        if !nodes[id]!.isLeader {
            Issue.record("node \(id) did not win its election: \(nodes[id]!.status)", sourceLocation: sourceLocation)
        }
        // One heartbeat round so every follower learns the no-op is committed.
        tick()
    }

    /// Proposes `text` on `id`, which must lead.
    @discardableResult
    mutating func propose(
        _ id: NodeID, _ text: String = "x", sourceLocation: SourceLocation = #_sourceLocation
    ) -> ProposalReceipt? {
        do {
            return try nodes[id]!.propose(bytes(text))
        } catch {
            Issue.record("proposal on \(id) refused: \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// Application snapshot at the applied index of `id`, compacting its log and storage.
    @discardableResult
    mutating func compact(_ id: NodeID, data: [UInt8]) -> Snapshot? {
        let index = nodes[id]!.log.applied
        guard let snapshot = nodes[id]!.compact(at: index) else { return nil }
        stateBytes[id] = data
        do { try storage[id]!.compact(to: snapshot) } catch { Issue.record("compact failed: \(error)") }
        return snapshot
    }

    func commitIndex(_ id: NodeID) -> LogIndex { nodes[id]!.log.committed }
    func lastIndex(_ id: NodeID) -> LogIndex { nodes[id]!.log.lastIndex }

    /// Payload commands of the entries `id` applied, as text.
    func appliedCommands(_ id: NodeID) -> [String] {
        applied[id]!.compactMap { entry in
            if case .command(let data) = entry.payload { return String(decoding: data, as: UTF8.self) }
            return nil
        }
    }
}

/// Shorthand for node ids in tests.
let n1: NodeID = 1
let n2: NodeID = 2
let n3: NodeID = 3
let n4: NodeID = 4
let n5: NodeID = 5
