/// Every bound the harness uses, named in one place.
enum Limits {
    // MARK: Cluster

    /// Node counts the harness can lay out (a majority must survive every fault).
    static let nodeCounts: Set<Int> = [3, 5]
    /// Raft heartbeat and election timeout of the cluster under test (kvd's defaults).
    static let heartbeatMillis = 50
    static let electionTimeoutMillis = 500
    /// Ports every node listens on, each on its own address.
    static let peerPort = 7100
    static let clientPort = 7000
    /// Node `i` gets host `nodeHostBase + i` in the run's /24.
    static let nodeHostBase = 10
    /// The harness's own address in the run's /24 (on the bridge, root namespace).
    static let harnessHost = 1
    /// Third octets the harness tries for its 10.231.x.0/24 subnet.
    static let subnetOctets = 1...250
    /// Longest wait for a leader known by every node at start and after the run.
    static let leaderWaitMax: Duration = .seconds(30)
    /// How often node roles are polled with INFO.
    static let infoPollInterval: Duration = .milliseconds(50)
    /// Deadline of one INFO request to one node.
    static let infoTimeout: Duration = .milliseconds(400)
    /// Grace after SIGTERM before SIGKILL when the run ends.
    static let stopGrace: Duration = .seconds(3)

    // MARK: Faults

    /// How long a fault lasts before it heals (uniform in this range).
    static let faultMillis = 2_000...4_000
    /// Longest a membership change of `replace-random` (remove, add, promote) is retried.
    static let membershipChangeWait: Duration = .seconds(30)
    /// Quiet time after a heal before the next fault (uniform); extended while recovery lasts.
    static let quietMillis = 2_500...4_000
    /// Longest wait after a heal for a leader known by every node and a first successful write.
    static let recoveryWaitMax: Duration = .seconds(20)
    /// Length of the fault phase of `--short`, in seconds.
    static let shortFaultPhaseSeconds = 120.0
    /// Longest fault phase accepted, in minutes.
    static let minutesMax = 24.0 * 60

    // MARK: Workloads

    /// Register clients, keys and the pause between their operations.
    static let registerClients = 4
    static let registerKeys = 5
    /// Register clients move to fresh keys this often (see `RegisterWorkload.key`).
    static let registerKeyEpochSeconds = 20
    static let registerPauseMillis = 10...40
    /// Lock clients contending for one lock, the TTL of their leases and the lock wait.
    static let lockClients = 3
    static let lockLeaseSeconds = 2
    static let lockWaitMillis = 3_000
    /// One lock round in this many stalls past its lease before its fenced write.
    static let lockStallOneIn = 25
    /// How long such a holder stalls: longer than its lease.
    static let lockStall: Duration = .milliseconds(lockLeaseSeconds * 1_000 + 700)
    /// Pause between one client's lock rounds.
    static let lockPauseMillis = 10...40
    /// The steady lock holder's lease TTL, far above any fault's length plus a failover, and how
    /// often it renews the lease and asks for the lock again.
    static let steadyLeaseSeconds = 10
    static let steadyRenewMillis = 1_000
    /// Exactly-once session clients.
    static let sessionClients = 2
    static let sessionPauseMillis = 10...40
    /// Overall deadline of one client request, retries included, and of one attempt.
    static let requestTimeout: Duration = .seconds(4)
    static let attemptTimeout: Duration = .milliseconds(600)
    /// One LOCK ... WAIT attempt waits a little longer than the server-side wait.
    static let lockAttemptTimeout: Duration = .milliseconds(lockWaitMillis + 1_000)
    static let lockRequestTimeout: Duration = .milliseconds(lockWaitMillis + 3_000)

    // MARK: Checking

    /// Work one linearizability check may do; running out is reported, never taken as a pass.
    static let checkDuration: Duration = .seconds(90)

    // MARK: Negative control

    /// Attempts at observing a stale read before the control is declared failed.
    static let negativeControlAttempts = 3
    /// Longest wait for the majority side to elect a new leader during the control.
    static let negativeControlElectionWait: Duration = .seconds(15)
}
