/// Locks with fencing tokens, and fence registers, as kvd serves them.
///
/// Semantics encoded, per lock name:
/// - `acquire(lock, owner)` answering `.granted(token)` takes effect when the lock is free and
///   makes `owner` its single holder with `token`, which must be greater than every token this
///   lock granted before (tokens strictly increase and are never reused). It cannot take effect
///   while the lock is held: a waiting acquire linearizes at its grant.
/// - `release(lock, token)` answers `.ok` and frees the lock if `token` is the holder's token, and
///   `.notHeld` (a definite rejection that observes "not held with this token") otherwise.
/// - `fencedWrite(lock, token, key, value)` answers `.ok` if `token` is the current holder's token
///   and `.stale` otherwise; it does not change the lock. The written value is not modelled here:
///   record an accepted fenced write as a `put` in a `KVModel` history as well to check reads.
/// - `expire(lock)` answers `.ok` and frees a held lock whoever holds it. The harness records one
///   when the state machine reports that a lock was released because its lease ended (lease
///   expiry or revoke). This is how leases enter the model: the checker never releases a lock on
///   its own, so two holders at once is always a violation. A harness that only suspects an
///   expiry may record it with an unknown outcome, which lets it happen at any time after its
///   call, or never.
///
/// Per fence register name:
/// - `fence(name, token)` answers `.ok` and raises the register to `token` if `token` is at least
///   the highest token it has accepted (any token when it has accepted none), and `.stale`
///   otherwise.
///
/// An acquire with an unknown outcome may have been granted a token the client never saw. The
/// state keeps it as "some token at least L, none of the values later observed not to be it"
/// until a later release or fenced write that succeeded with token T pins it to T, so that tokens
/// stay exactly checked without guessing values.
///
/// Each lock name and each fence register name is its own partition (`"lock NAME"`,
/// `"fence NAME"`). Handing the checker an output of the wrong kind for an input is a programmer
/// error and stops the process.
public struct LockModel: Model {
    /// A request.
    public enum Input: Hashable, Sendable {
        /// Acquire `lock` for `owner` (a client, session or lease id).
        case acquire(lock: String, owner: Int)
        /// Release `lock` held with `token`.
        case release(lock: String, token: Int)
        /// Write `value` to `key` only if `lock` is held with `token`.
        case fencedWrite(lock: String, token: Int, key: String, value: String)
        /// Present `token` to the fence register `name`.
        case fence(name: String, token: Int)
        /// The lease holding `lock` ended and the state machine released it.
        case expire(lock: String)

        /// The partition of the request: `"lock NAME"` or `"fence NAME"`.
        public var partitionName: String {
            switch self {
            case .acquire(let lock, _), .release(let lock, _), .fencedWrite(let lock, _, _, _), .expire(let lock):
                "lock \(lock)"
            case .fence(let name, _):
                "fence \(name)"
            }
        }
    }

    /// A reply.
    public enum Output: Hashable, Sendable {
        /// An acquire's answer: the fencing token.
        case granted(token: Int)
        /// A successful release, fenced write, fence or expiry.
        case ok
        /// A release whose token does not hold the lock.
        case notHeld
        /// A fenced write or fence rejected because its token is superseded (`-STALE`).
        case stale
    }

    /// A holder's fencing token, exact or only bounded when the acquire's reply was lost.
    public enum Token: Hashable, Sendable {
        /// The token is known.
        case known(Int)
        /// The token is some value at least `atLeast`, other than those in `excluding`.
        case unknown(atLeast: Int, excluding: Set<Int>)

        /// Whether the token may be `token`.
        func admits(_ token: Int) -> Bool {
            switch self {
            case .known(let value): value == token
            case .unknown(let atLeast, let excluding): token >= atLeast && !excluding.contains(token)
            }
        }
    }

    /// The holder of a lock.
    public struct Holder: Hashable, Sendable {
        /// Who acquired the lock.
        public var owner: Int
        /// The fencing token it was granted.
        public var token: Token
    }

    /// One lock.
    public struct LockState: Hashable, Sendable {
        /// The current holder, or nil when the lock is free.
        public var holder: Holder?
        /// The smallest token the next grant may carry: one more than the highest token granted.
        public var lowestNextToken = Int.min
    }

    /// Every lock and fence register touched so far.
    public struct State: Hashable, Sendable {
        /// Locks by name; a missing name is a free lock that never granted a token.
        public var locks: [String: LockState] = [:]
        /// The highest accepted token of each fence register; a missing name accepted none.
        public var fences: [String: Int] = [:]
    }

    /// The model; it has no parameters.
    public init() {}

    /// Every lock free, every fence register empty.
    public var initialState: State { State() }

    /// Applies one request; see the type's documentation for the semantics.
    public func step(_ state: State, _ input: Input, _ output: Output?) -> StepResult<State> {
        switch input {
        case .acquire(let name, let owner):
            return stepLock(state, name) { acquire($0, owner: owner, output, input) }
        case .release(let name, let token):
            return stepLock(state, name) { release($0, token: token, output, input) }
        case .fencedWrite(let name, let token, _, _):
            return stepLock(state, name) { fencedWrite($0, token: token, output, input) }
        case .expire(let name):
            return stepLock(state, name) { expire($0, output, input) }
        case .fence(let name, let token):
            return fence(state, name: name, token: token, output, input)
        }
    }

    /// One partition per lock and per fence register.
    public func partition(_ history: [Operation<Input, Output>]) -> [Partition<Input, Output>] {
        Partition.grouping(history) { $0.partitionName }
    }
}
