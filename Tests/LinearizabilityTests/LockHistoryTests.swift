import Linearizability
import Testing

/// Hand-written lock and fence histories, each proving one rule of `LockModel`.
@Suite struct LockHistoryTests {
    @Test("a lock's life: acquire, fenced writes, release, a new holder with a higher token")
    func lifecycle() {
        let history = [
            lockOp(1, 0, 10, .acquire(lock: "L", owner: 1), .granted(token: 5)),
            lockOp(1, 11, 20, .fencedWrite(lock: "L", token: 5, key: "k", value: "v"), .ok),
            lockOp(1, 21, 30, .release(lock: "L", token: 5), .ok),
            lockOp(2, 15, 40, .acquire(lock: "L", owner: 2), .granted(token: 9)),
            lockOp(1, 41, 50, .fencedWrite(lock: "L", token: 5, key: "k", value: "v"), .stale),
            lockOp(2, 41, 50, .fencedWrite(lock: "L", token: 9, key: "k", value: "w"), .ok),
            lockOp(1, 51, 60, .release(lock: "L", token: 5), .notHeld),
        ]
        #expect(checkLocks(history).isOK)
    }

    @Test("two holders of one lock at once are rejected")
    func twoHolders() throws {
        let history = [
            lockOp(1, 0, 10, .acquire(lock: "L", owner: 1), .granted(token: 5)),
            lockOp(2, 20, 30, .acquire(lock: "L", owner: 2), .granted(token: 6)),
        ]
        let example = try #require(counterexample(checkLocks(history)))
        #expect(example.partition == "lock L")
        #expect(example.unplaceableOperation.index == 1)
    }

    @Test("a token reused or decreasing is rejected")
    func tokensStrictlyIncrease() {
        let first = [
            lockOp(1, 0, 10, .acquire(lock: "L", owner: 1), .granted(token: 5)),
            lockOp(1, 11, 20, .release(lock: "L", token: 5), .ok),
        ]
        #expect(checkLocks(first + [lockOp(2, 21, 30, .acquire(lock: "L", owner: 2), .granted(token: 5))]).isIllegal)
        #expect(checkLocks(first + [lockOp(2, 21, 30, .acquire(lock: "L", owner: 2), .granted(token: 4))]).isIllegal)
        #expect(checkLocks(first + [lockOp(2, 21, 30, .acquire(lock: "L", owner: 2), .granted(token: 6))]).isOK)
        // Tokens are per lock: another lock may grant 5 again.
        #expect(checkLocks(first + [lockOp(2, 21, 30, .acquire(lock: "M", owner: 2), .granted(token: 5))]).isOK)
    }

    @Test("a fenced write accepted with a superseded token is rejected")
    func supersededFencedWrite() {
        let history = [
            lockOp(1, 0, 10, .acquire(lock: "L", owner: 1), .granted(token: 5)),
            lockOp(9, 11, 20, .expire(lock: "L"), .ok),
            lockOp(2, 21, 30, .acquire(lock: "L", owner: 2), .granted(token: 7)),
            lockOp(1, 31, 40, .fencedWrite(lock: "L", token: 5, key: "k", value: "v"), .ok),
        ]
        #expect(checkLocks(history).isIllegal)
        var rejected = history
        rejected[3] = lockOp(1, 31, 40, .fencedWrite(lock: "L", token: 5, key: "k", value: "v"), .stale)
        #expect(checkLocks(rejected).isOK)
        // Accepted while 7 holds is fine for 7, and a stale answer for 7 then is not.
        #expect(checkLocks(Array(history[0..<3]) + [lockOp(2, 31, 40, .fencedWrite(lock: "L", token: 7, key: "k", value: "v"), .ok)]).isOK)
        #expect(checkLocks(Array(history[0..<3]) + [lockOp(2, 31, 40, .fencedWrite(lock: "L", token: 7, key: "k", value: "v"), .stale)]).isIllegal)
    }

    @Test("an expiry the harness only suspects may free the lock at any time after its call, or never")
    func suspectedExpiry() {
        let held = lockOp(1, 0, 10, .acquire(lock: "L", owner: 1), .granted(token: 5))
        let next = lockOp(2, 100, 110, .acquire(lock: "L", owner: 2), .granted(token: 8))
        #expect(checkLocks([held, next]).isIllegal, "no expiry recorded: two holders")
        #expect(checkLocks([held, lockUnknown(9, 50, .expire(lock: "L")), next]).isOK)
        #expect(checkLocks([held, lockUnknown(9, 120, .expire(lock: "L")), next]).isIllegal, "not before its call")
        let stillHeld = lockOp(1, 60, 70, .fencedWrite(lock: "L", token: 5, key: "k", value: "v"), .ok)
        #expect(checkLocks([held, lockUnknown(9, 50, .expire(lock: "L")), stillHeld]).isOK, "or never")
    }

    @Test("an acquire whose reply was lost holds an unknown token that later observations pin")
    func unknownAcquire() {
        let lost = lockUnknown(1, 0, .acquire(lock: "L", owner: 1))
        // It may never have taken effect: another client can hold the lock.
        #expect(checkLocks([lost, lockOp(2, 50, 60, .acquire(lock: "L", owner: 2), .granted(token: 3))]).isOK)
        // A fenced write accepted with 4 while nobody else was granted anything pins its token to 4.
        let pinned = [lost, lockOp(1, 10, 20, .fencedWrite(lock: "L", token: 4, key: "k", value: "v"), .ok)]
        #expect(checkLocks(pinned).isOK)
        let expired = lockOp(9, 30, 40, .expire(lock: "L"), .ok)
        #expect(checkLocks(pinned + [expired, lockOp(2, 50, 60, .acquire(lock: "L", owner: 2), .granted(token: 4))]).isIllegal)
        #expect(checkLocks(pinned + [expired, lockOp(2, 50, 60, .acquire(lock: "L", owner: 2), .granted(token: 5))]).isOK)
        // Once pinned to 4 and not released, 4 cannot be stale.
        let contradiction = pinned + [lockOp(1, 30, 40, .fencedWrite(lock: "L", token: 4, key: "k", value: "v"), .stale)]
        #expect(checkLocks(contradiction).isIllegal)
        // Accepted with 4 and with 6 while nothing could have been granted in between: one token only.
        let twoTokens = pinned + [lockOp(1, 30, 40, .fencedWrite(lock: "L", token: 6, key: "k", value: "v"), .ok)]
        #expect(checkLocks(twoTokens).isIllegal)
    }

    @Test("a release with an unknown outcome may or may not have freed the lock")
    func unknownRelease() {
        let held = lockOp(1, 0, 10, .acquire(lock: "L", owner: 1), .granted(token: 5))
        let release = lockUnknown(1, 20, .release(lock: "L", token: 5))
        #expect(checkLocks([held, release, lockOp(2, 30, 40, .acquire(lock: "L", owner: 2), .granted(token: 6))]).isOK)
        #expect(checkLocks([held, release, lockOp(1, 30, 40, .fencedWrite(lock: "L", token: 5, key: "k", value: "v"), .ok)]).isOK)
    }

    @Test("a release reporting not-held while the token holds is rejected")
    func wrongNotHeld() {
        let history = [
            lockOp(1, 0, 10, .acquire(lock: "L", owner: 1), .granted(token: 5)),
            lockOp(1, 11, 20, .release(lock: "L", token: 5), .notHeld),
        ]
        #expect(checkLocks(history).isIllegal)
    }

    @Test("a fence register accepts tokens at least its highest and raises it")
    func fenceRegister() throws {
        let base = [
            lockOp(1, 0, 10, .fence(name: "db", token: 3), .ok),
            lockOp(2, 11, 20, .fence(name: "db", token: 5), .ok),
            lockOp(1, 21, 30, .fence(name: "db", token: 4), .stale),
            lockOp(2, 31, 40, .fence(name: "db", token: 5), .ok),
        ]
        #expect(checkLocks(base).isOK)
        let lowered = base + [lockOp(1, 41, 50, .fence(name: "db", token: 4), .ok)]
        let example = try #require(counterexample(checkLocks(lowered)))
        #expect(example.partition == "fence db")
        #expect(checkLocks(base + [lockOp(1, 41, 50, .fence(name: "db", token: 6), .stale)]).isIllegal)
        // An unknown fence may or may not have raised the register.
        let maybeRaised = lockUnknown(3, 41, .fence(name: "db", token: 9))
        #expect(checkLocks(base + [maybeRaised, lockOp(1, 50, 60, .fence(name: "db", token: 7), .ok)]).isOK)
        #expect(checkLocks(base + [maybeRaised, lockOp(1, 50, 60, .fence(name: "db", token: 7), .stale)]).isOK)
    }
}
