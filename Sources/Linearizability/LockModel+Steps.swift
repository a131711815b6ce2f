/// The per-request rules of `LockModel`. Each lock rule returns every state the lock may be in
/// afterwards: none when the request is illegal, one when it is determined, two when an unknown
/// outcome leaves both observations open.
extension LockModel {
    func stepLock(_ state: State, _ name: String, _ rule: (LockState) -> [LockState]) -> StepResult<State> {
        let outcomes = rule(state.locks[name] ?? LockState())
        let states = outcomes.map { lock in
            var next = state
            next.locks[name] = lock
            return next
        }
        switch states.count {
        case 0: return .illegal
        case 1: return .legal(states[0])
        default: return .legalAnyOf(states)
        }
    }

    func acquire(_ lock: LockState, owner: Int, _ output: Output?, _ input: Input) -> [LockState] {
        guard lock.holder == nil else { return [] }
        var next = lock
        switch output {
        case .granted(let token)?:
            guard token >= lock.lowestNextToken else { return [] }
            next.holder = Holder(owner: owner, token: .known(token))
            next.lowestNextToken = successor(token)
        case nil:
            next.holder = Holder(owner: owner, token: .unknown(atLeast: lock.lowestNextToken, excluding: []))
            next.lowestNextToken = successor(lock.lowestNextToken)
        case .ok?, .notHeld?, .stale?:
            mismatched(input, output)
        }
        return [next]
    }

    func release(_ lock: LockState, token: Int, _ output: Output?, _ input: Input) -> [LockState] {
        switch output {
        case .ok?:
            return holding(lock, token).map { pinned in
                var next = pinned
                next.holder = nil
                return next
            }
        case .notHeld?:
            return notHolding(lock, token)
        case nil:
            return release(lock, token: token, .ok, input) + release(lock, token: token, .notHeld, input)
        case .granted?, .stale?:
            mismatched(input, output)
        }
    }

    func fencedWrite(_ lock: LockState, token: Int, _ output: Output?, _ input: Input) -> [LockState] {
        switch output {
        case .ok?: holding(lock, token)
        case .stale?: notHolding(lock, token)
        case nil: holding(lock, token) + notHolding(lock, token)
        case .granted?, .notHeld?: mismatched(input, output)
        }
    }

    func expire(_ lock: LockState, _ output: Output?, _ input: Input) -> [LockState] {
        switch output {
        case nil, .ok?:
            guard lock.holder != nil else { return [] }
            var next = lock
            next.holder = nil
            return [next]
        case .granted?, .notHeld?, .stale?:
            mismatched(input, output)
        }
    }

    func fence(_ state: State, name: String, token: Int, _ output: Output?, _ input: Input) -> StepResult<State> {
        let accepts = state.fences[name].map { token >= $0 } ?? true
        var next = state
        if accepts { next.fences[name] = token }
        switch output {
        case nil: return .legal(next)
        case .ok?: return accepts ? .legal(next) : .illegal
        case .stale?: return accepts ? .illegal : .legal(next)
        case .granted?, .notHeld?: mismatched(input, output)
        }
    }

    /// The lock as it is if `token` is its holder's token (pinning an unknown token to `token`
    /// and raising the next-token bound past it), or nothing if it cannot be.
    private func holding(_ lock: LockState, _ token: Int) -> [LockState] {
        guard let holder = lock.holder, holder.token.admits(token) else { return [] }
        var next = lock
        next.holder = Holder(owner: holder.owner, token: .known(token))
        next.lowestNextToken = max(lock.lowestNextToken, successor(token))
        return [next]
    }

    /// The lock as it is if `token` is not its holder's token (remembering that for an unknown
    /// token), or nothing if it must be.
    private func notHolding(_ lock: LockState, _ token: Int) -> [LockState] {
        guard let holder = lock.holder else { return [lock] }
        switch holder.token {
        case .known(let value):
            return value == token ? [] : [lock]
        case .unknown(let atLeast, var excluding):
            guard holder.token.admits(token) else { return [lock] }
            excluding.insert(token)
            var next = lock
            next.holder = Holder(owner: holder.owner, token: .unknown(atLeast: atLeast, excluding: excluding))
            return [next]
        }
    }

    /// `token + 1`, saturating: tokens are log indexes and never come near `Int.max`.
    private func successor(_ token: Int) -> Int {
        token == Int.max ? token : token + 1
    }

    func mismatched(_ input: Input, _ output: Output?) -> Never {
        preconditionFailure("LockModel: output \(String(describing: output)) cannot answer \(input)")
    }
}
