import KVAuth
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Checks client passwords for `AUTH` and `HELLO ... AUTH` (docs/SECURITY.md).
///
/// - A password hash costs hundreds of thousands of HMACs to check, so checks run on NIO's
///   blocking-work thread pool, never on an event loop or the Raft loop.
/// - An unknown user costs the same as a wrong password (a dummy hash is checked), so the answer's
///   timing does not tell which names exist.
/// - A pair that passed is remembered (by a keyed digest, never the password) so that clients
///   that reconnect often pay the cost once; a wrong password is never remembered.
/// - Each failure from a host delays that host's next answers, up to `failureDelayMax`; a success
///   clears it. Failures are counted (`kvd_auth_failures_total`) and logged with the user name
///   and the client's address, never the password.
/// - `reload` replaces the users (kvd does on `SIGHUP`): the next `AUTH` checks the new
///   passwords, and each authenticated connection finds its user again by name before its next
///   command (`current`), so changed permissions apply at once and a removed user's connections
///   must authenticate again.
final class Authenticator: Sendable {
    /// The delay added per recent failure from one host, and its cap.
    static let failureDelayStep = TimeAmount.milliseconds(200)
    static let failureDelayMax = TimeAmount.seconds(2)
    /// Hosts whose failures are remembered; beyond this the oldest are forgotten.
    static let failingHostsMax = 10_000
    /// Verified pairs remembered; beyond this the memory is cleared.
    static let verifiedPairsMax = 10_000

    enum Outcome: Sendable {
        case accepted(User)
        case refused
    }

    private let directory: Mutex<UserDirectory>
    /// Whether any user is defined (read on every command, so not behind the mutex).
    private let enabled: Atomic<Bool>
    /// Bumped by every `reload`; connections compare it to find their user again.
    private let generationCounter = Atomic<UInt64>(0)
    private let metrics: DaemonMetrics
    private let logger: Logger
    private let pool: NIOThreadPool
    /// A random key for the remembered pairs' digests (per process).
    private let cacheKey: [UInt8]
    private let verified = Mutex<Set<[UInt8]>>([])
    private let failures = Mutex<[String: Int]>([:])
    /// Checked for unknown users, so they cost what a known one does (made on first need).
    private let dummy = Mutex<PasswordHash?>(nil)

    init(users: UserDirectory, metrics: DaemonMetrics, logger: Logger, pool: NIOThreadPool = .singleton) {
        directory = Mutex(users)
        enabled = Atomic(users.isEnabled)
        self.metrics = metrics
        self.logger = logger
        self.pool = pool
        var generator = SystemRandomNumberGenerator()
        cacheKey = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        if users.isEnabled { dummy.withLock { $0 = try? PasswordHash.make(password: cacheKey) } }
    }

    var isEnabled: Bool { enabled.load(ordering: .relaxed) }

    /// Changes with every `reload`.
    var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    /// `name` as the users are now (nil: removed by a reload), for a connection whose
    /// `generation` is older than the current one.
    func current(named name: String) -> User? { directory.withLock { $0.user(named: name) } }

    /// Replaces the users. Remembered pairs are forgotten: a password may have changed.
    func reload(_ users: UserDirectory) {
        if users.isEnabled, dummy.withLock({ $0 == nil }) {
            let made = try? PasswordHash.make(password: cacheKey)
            dummy.withLock { $0 = made }
        }
        directory.withLock { $0 = users }
        verified.withLock { $0.removeAll() }
        enabled.store(users.isEnabled, ordering: .relaxed)
        generationCounter.add(1, ordering: .releasing)
    }

    /// Checks `password` for `userName` from `host`; the future completes on `eventLoop` after the
    /// host's failure delay.
    func authenticate(
        user userName: String, password: [UInt8], host: String, on eventLoop: any EventLoop
    ) -> EventLoopFuture<Outcome> {
        let user = current(named: userName)
        let pairKey = HMACSHA256.authenticate(Array(userName.utf8) + [0] + password, key: cacheKey)
        let remembered = user != nil && verified.withLock { $0.contains(pairKey) }
        let check: EventLoopFuture<Bool>
        if remembered {
            check = eventLoop.makeSucceededFuture(true)
        } else {
            let hash = user?.passwordHash ?? dummy.withLock { $0 }
            check = pool.runIfActive(eventLoop: eventLoop) { hash?.matches(password) == true && user != nil }
        }
        let delay = failureDelay(host)
        return check.flatMap { passed in
            let outcome = self.record(passed, user: user, name: userName, host: host, pairKey: pairKey)
            guard delay > .zero else { return eventLoop.makeSucceededFuture(outcome) }
            return eventLoop.scheduleTask(in: delay) { outcome }.futureResult
        }
    }

    private func record(_ passed: Bool, user: User?, name: String, host: String, pairKey: [UInt8]) -> Outcome {
        guard passed, let user else {
            metrics.authFailures.increment()
            let count = failures.withLock { failures in
                if failures.count >= Self.failingHostsMax { failures.removeAll() }
                failures[host, default: 0] += 1
                return failures[host, default: 0]
            }
            logger.warning(
                "client authentication failed", metadata: ["user": "\(name.prefix(UserDirectory.nameBytesMax))", "client": "\(host)", "failures": "\(count)"])
            return .refused
        }
        metrics.authSuccesses.increment()
        _ = failures.withLock { $0.removeValue(forKey: host) }
        verified.withLock { verified in
            if verified.count >= Self.verifiedPairsMax { verified.removeAll() }
            verified.insert(pairKey)
        }
        return .accepted(user)
    }

    private func failureDelay(_ host: String) -> TimeAmount {
        let count = failures.withLock { $0[host] ?? 0 }
        return min(.nanoseconds(Self.failureDelayStep.nanoseconds * Int64(count)), Self.failureDelayMax)
    }
}
