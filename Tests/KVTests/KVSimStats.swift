/// What one run did, to show the workload really happened.
struct KVSimStats {
    var ticks: UInt64 = 0
    var crashes = 0
    /// Crashes in the middle of a `Ready`, just before a write of entries (among `crashes`).
    var crashesBeforeWrite = 0
    var pauses = 0
    var partitions = 0
    var lostMessages = 0
    var appliedEntries = 0
    var acknowledgedWrites = 0
    var indeterminateRetries = 0
    var lockGrants = 0
    var fencedAccepted = 0
    var fencedStale = 0
    var leaseExpiries = 0
    var leaseCheckpoints = 0
    var uncheckedHistories = 0
    var historyOperations = 0
    /// Snapshots followers installed from a leader's state database.
    var snapshotsInstalled = 0
    /// Requests a follower answered with a result (forwarded writes, reads at a read index).
    var answeredByFollowers = 0
    /// Voters the operator removed, added back as learners and promoted again.
    var membershipChanges = 0

    mutating func add(_ other: KVSimStats) {
        ticks += other.ticks
        crashes += other.crashes
        crashesBeforeWrite += other.crashesBeforeWrite
        pauses += other.pauses
        partitions += other.partitions
        lostMessages += other.lostMessages
        appliedEntries += other.appliedEntries
        acknowledgedWrites += other.acknowledgedWrites
        indeterminateRetries += other.indeterminateRetries
        lockGrants += other.lockGrants
        fencedAccepted += other.fencedAccepted
        fencedStale += other.fencedStale
        leaseExpiries += other.leaseExpiries
        leaseCheckpoints += other.leaseCheckpoints
        uncheckedHistories += other.uncheckedHistories
        historyOperations += other.historyOperations
        snapshotsInstalled += other.snapshotsInstalled
        answeredByFollowers += other.answeredByFollowers
        membershipChanges += other.membershipChanges
    }

    var summary: String {
        "\(ticks) ticks, \(appliedEntries) entries applied, \(acknowledgedWrites) writes acknowledged "
            + "(\(indeterminateRetries) indeterminate retries), \(lockGrants) lock grants, fenced writes \(fencedAccepted) "
            + "accepted / \(fencedStale) stale, \(leaseExpiries) lease expiries, \(leaseCheckpoints) leases checkpointed, "
            + "\(crashes) crashes (\(crashesBeforeWrite) before a write of entries), \(pauses) pauses, "
            + "\(partitions) partitions, \(lostMessages) messages lost, \(snapshotsInstalled) snapshots installed, \(answeredByFollowers) answered by followers, \(membershipChanges) voters replaced, \(historyOperations) KV operations checked, "
            + "\(uncheckedHistories) histories unchecked (budget)"
    }
}
