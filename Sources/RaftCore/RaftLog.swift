/// A node's view of its log: a snapshot prefix, then contiguous entries held in memory. Entries
/// from `unstableFrom` on have not yet been handed to the driver for persistence.
///
/// Invariants: `entries[i].index == snapshotIndex + 1 + i`; terms never decrease along the log;
/// `committed <= lastIndex` once the entries it covers are here; `applied <= committed`.
struct RaftLog: Sendable {
    private(set) var snapshotIndex: LogIndex
    private(set) var snapshotTerm: Term
    private(set) var entries: [Entry]
    /// First index not yet handed to a `Ready` for persistence.
    private(set) var unstableFrom: LogIndex
    /// Highest index known to be committed (§5.3).
    var committed: LogIndex
    /// Highest index the application has applied (confirmed by `advance`).
    var applied: LogIndex
    /// Highest index handed to the application to apply (applied once `advance` confirms it).
    var applying: LogIndex

    /// Membership in force at the snapshot, then every membership entry after it, in order.
    private(set) var baseMembership: ClusterMembership
    private(set) var membershipEntries: [(index: LogIndex, membership: ClusterMembership)]

    init(state: PersistentState, bootstrap: ClusterMembership, appliedIndex: LogIndex) throws(ConfigurationError) {
        let snapshot = state.snapshot?.metadata
        snapshotIndex = snapshot?.lastIncludedIndex ?? .zero
        snapshotTerm = snapshot?.lastIncludedTerm ?? .zero
        baseMembership = snapshot?.membership ?? bootstrap
        entries = state.entries
        membershipEntries = []
        var expected = snapshotIndex.next
        var previousTerm = snapshotTerm
        for entry in entries {
            guard entry.index == expected else {
                throw .invalid("stored log has a gap: expected index \(expected), found \(entry.index)")
            }
            guard entry.term >= previousTerm else {
                throw .invalid("stored log term decreases at index \(entry.index)")
            }
            if case .membership(let membership) = entry.payload { membershipEntries.append((entry.index, membership)) }
            expected = expected.next
            previousTerm = entry.term
        }
        unstableFrom = expected
        let lastIndex = expected.previous
        // The stored commit index may be ahead of a log that lost its unsynced tail; never
        // claim more than is here, and never less than the snapshot.
        committed = max(snapshotIndex, min(state.hardState.commitIndex, lastIndex))
        guard appliedIndex <= max(committed, snapshotIndex) || appliedIndex <= lastIndex else {
            throw .invalid("applied index \(appliedIndex) is beyond the log (last index \(lastIndex))")
        }
        applied = max(appliedIndex, snapshotIndex)
        applying = applied
        committed = max(committed, applied)
    }

    var lastIndex: LogIndex { entries.last?.index ?? snapshotIndex }
    var lastTerm: Term { entries.last?.term ?? snapshotTerm }
    var firstIndex: LogIndex { snapshotIndex.next }

    /// The membership in force: the latest one in the log, committed or not (thesis §4.1).
    var membership: ClusterMembership { membershipEntries.last?.membership ?? baseMembership }
    /// The index of the latest membership entry, or the snapshot index if none is in the log.
    var membershipIndex: LogIndex { membershipEntries.last?.index ?? snapshotIndex }

    /// The term of the entry at `index`, or nil if it is compacted away or beyond the log.
    func term(at index: LogIndex) -> Term? {
        if index == snapshotIndex { return snapshotTerm }
        if index < snapshotIndex || index > lastIndex { return nil }
        return entries[offset(index)].term
    }

    func entry(at index: LogIndex) -> Entry? {
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[offset(index)]
    }

    func matches(index: LogIndex, term: Term) -> Bool { self.term(at: index) == term }

    /// §5.4.1: a candidate's log is at least as up-to-date as ours.
    func isUpToDate(lastIndex otherIndex: LogIndex, lastTerm otherTerm: Term) -> Bool {
        otherTerm > lastTerm || (otherTerm == lastTerm && otherIndex >= lastIndex)
    }

    /// Entries from `start` on, at most `maxCount` and about `maxBytes` (always at least one if
    /// any exists); nil if `start` is compacted away.
    func entries(from start: LogIndex, maxCount: Int, maxBytes: Int) -> [Entry]? {
        guard start > snapshotIndex else { return nil }
        guard start <= lastIndex else { return [] }
        var result: [Entry] = []
        var bytes = 0
        var index = offset(start)
        while index < entries.count, result.count < maxCount {
            let entry = entries[index]
            if !result.isEmpty && bytes + entry.sizeBytes > maxBytes { break }
            result.append(entry)
            bytes += entry.sizeBytes
            index += 1
        }
        return result
    }

    /// Committed entries not yet handed to the application, at most `maxCount`.
    func entriesToApply(maxCount: Int) -> [Entry] {
        guard hasEntriesToApply else { return [] }
        let upper = min(committed, lastIndex)
        let start = offset(applying.next)
        let end = min(offset(upper) + 1, start + maxCount)
        return Array(entries[start..<end])
    }

    /// Whether `entriesToApply` would return anything (without building the array).
    var hasEntriesToApply: Bool { min(committed, lastIndex) > applying && applying >= snapshotIndex }

    /// Entries to hand to the driver for persistence, marking them handed out.
    mutating func takeUnstable() -> [Entry] {
        guard unstableFrom <= lastIndex else { return [] }
        let result = Array(entries[offset(unstableFrom)...])
        unstableFrom = lastIndex.next
        return result
    }

    var hasUnstable: Bool { unstableFrom <= lastIndex }

    /// Appends entries a leader created; their indexes must follow the last one.
    mutating func appendAsLeader(_ newEntries: [Entry]) {
        for entry in newEntries {
            precondition(entry.index == lastIndex.next, "leader append must be contiguous")
            appendOne(entry)
        }
    }

    /// The follower side of AppendEntries after the consistency check passed at `prevIndex`:
    /// skips entries already present, truncates at the first conflict, appends the rest (§5.3).
    /// Returns the index of the last entry of the request, which now matches the leader.
    mutating func appendAsFollower(prevIndex: LogIndex, entries newEntries: [Entry]) -> LogIndex {
        var lastNew = prevIndex
        for entry in newEntries {
            lastNew = entry.index
            if entry.index <= snapshotIndex { continue }  // covered by our snapshot: committed, so it matches
            if let existing = term(at: entry.index) {
                if existing == entry.term { continue }
                precondition(entry.index > committed, "conflict at committed index \(entry.index): safety violated")
                truncate(from: entry.index)
            }
            appendOne(entry)
        }
        return lastNew
    }

    /// Conflict hints for a failed consistency check at `index` (see `AppendEntriesResponse`).
    func conflictHint(at index: LogIndex) -> (term: Term?, index: LogIndex) {
        guard let conflictTerm = term(at: index), index > snapshotIndex else { return (nil, lastIndex.next) }
        var first = index
        while first.previous > snapshotIndex, term(at: first.previous) == conflictTerm { first = first.previous }
        return (conflictTerm, first)
    }

    /// The last index holding an entry of `term`, searching back from `from`; nil if none.
    func lastIndex(ofTerm target: Term, atOrBefore from: LogIndex) -> LogIndex? {
        var index = min(from, lastIndex)
        while index > snapshotIndex {
            guard let t = term(at: index) else { return nil }
            if t == target { return index }
            if t < target { return nil }
            index = index.previous
        }
        return nil
    }

    /// Discards entries up to `index` after the application snapshotted there.
    mutating func compact(to index: LogIndex, term: Term) {
        guard index > snapshotIndex else { return }
        precondition(index <= applied, "cannot compact beyond the applied index")
        baseMembership = membership(atOrBefore: index)
        membershipEntries.removeAll { $0.index <= index }
        entries.removeFirst(offset(index) + 1)
        snapshotIndex = index
        snapshotTerm = term
        unstableFrom = max(unstableFrom, index.next)
    }

    /// Replaces the log by an installed snapshot (§7): entries after it are kept only if the log
    /// holds the snapshot's last entry with the same term.
    mutating func restore(_ metadata: SnapshotMetadata) {
        let index = metadata.lastIncludedIndex
        if index <= lastIndex, matches(index: index, term: metadata.lastIncludedTerm) {
            entries.removeFirst(offset(index) + 1)
            membershipEntries.removeAll { $0.index <= index }
        } else {
            entries.removeAll()
            membershipEntries.removeAll()
        }
        baseMembership = metadata.membership
        snapshotIndex = index
        snapshotTerm = metadata.lastIncludedTerm
        committed = max(committed, index)
        applied = max(applied, index)
        applying = max(applying, index)
        unstableFrom = max(unstableFrom, index.next)
        if entries.isEmpty { unstableFrom = index.next }
    }

    /// The compaction point as snapshot metadata, or nil if the log was never compacted.
    var snapshotMetadata: SnapshotMetadata? {
        guard snapshotIndex > .zero else { return nil }
        return SnapshotMetadata(lastIncludedIndex: snapshotIndex, lastIncludedTerm: snapshotTerm, membership: baseMembership)
    }

    /// What describes the state after applying every entry up to `index`: its term and the
    /// membership in force there. Nil if `index` is compacted away or beyond the log.
    func metadata(at index: LogIndex) -> SnapshotMetadata? {
        guard let term = term(at: index) else { return nil }
        return SnapshotMetadata(lastIncludedIndex: index, lastIncludedTerm: term, membership: membership(atOrBefore: index))
    }

    /// The membership in force at `index` (the latest membership entry at or before it).
    func membership(atOrBefore index: LogIndex) -> ClusterMembership {
        membershipEntries.last(where: { $0.index <= index })?.membership ?? baseMembership
    }

    private mutating func appendOne(_ entry: Entry) {
        entries.append(entry)
        if case .membership(let membership) = entry.payload { membershipEntries.append((entry.index, membership)) }
    }

    private mutating func truncate(from index: LogIndex) {
        entries.removeLast(Int(lastIndex.rawValue - index.rawValue) + 1)
        membershipEntries.removeAll { $0.index >= index }
        unstableFrom = min(unstableFrom, index)
    }

    private func offset(_ index: LogIndex) -> Int { Int(index.rawValue - snapshotIndex.rawValue - 1) }
}
