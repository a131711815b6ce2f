import KVProtocol

/// The multi-request parts of a worker's operations: the unmeasured reads that let CAS succeed,
/// and the four requests of a lock cycle.
extension BenchWorker {
    /// Reads the value of every CAS key this client has no belief about (not measured), and
    /// creates missing keys, so that swaps can succeed. False if the connection failed.
    mutating func refreshBeliefs(_ operations: inout [BenchOperation], on connection: BenchConnection) async -> Bool {
        for operation in operations {
            guard let key = source.keyNeedingRefresh(operation) else { continue }
            switch await connection.send([Array("GET".utf8), source.key(key)], timeout: plan.requestTimeout) {
            case .success(let reply):
                if let value = reply.value.bytes {
                    source.believe(key: key, value: value)
                } else if reply.value.isNull {
                    let create: [[UInt8]] = [Array("SET".utf8), source.key(key), source.value]
                    if case .success(let created) = await connection.send(create, timeout: plan.requestTimeout),
                        created.value == .ok
                    {
                        source.believe(key: key, value: source.value)
                    }
                }
            case .failure(let failure):
                fail(.transport(failure), at: BenchClock.now(), false)
                abandonConnection()
                return false
            }
        }
        operations = operations.map(source.refreshed)
        return true
    }

    /// One lock cycle: grant a lease, take the lock with it (waiting in the server's queue),
    /// release the lock, revoke the lease. A failure part-way revokes the lease if one was granted.
    mutating func lockCycle(name: Int, on connection: BenchConnection) async -> Result<Void, BenchFailureKind> {
        let lockName = source.lockName(name)
        let lease: Int64
        switch await step(["LEASE", "GRANT", String(plan.leaseTTLSeconds)], on: connection) {
        case .success(.integer(let id)): lease = id
        case .success: return .failure(Self.unexpectedReply)
        case .failure(let kind): return .failure(kind)
        }
        let waitTimeout = plan.requestTimeout + .milliseconds(plan.lockWaitMilliseconds)
        let token: Int64
        switch await step(
            [Array("LOCK".utf8), lockName] + ["LEASE", String(lease), "WAIT", String(plan.lockWaitMilliseconds)].map { Array($0.utf8) },
            on: connection, timeout: waitTimeout)
        {
        case .success(.integer(let granted)): token = granted
        case .success:
            await revoke(lease, on: connection)
            return .failure(Self.unexpectedReply)
        case .failure(let kind):
            await revoke(lease, on: connection)
            return .failure(kind)
        }
        if case .failure(let kind) = await step([Array("UNLOCK".utf8), lockName, Array(String(token).utf8)], on: connection) {
            await revoke(lease, on: connection)
            return .failure(kind)
        }
        if case .failure(let kind) = await step(["LEASE", "REVOKE", String(lease)], on: connection) {
            return .failure(kind)
        }
        return .success(())
    }

    static let unexpectedReply = BenchFailureKind(name: "unexpected reply", indeterminate: false)

    private mutating func revoke(_ lease: Int64, on connection: BenchConnection) async {
        guard connection.isActive else { return }
        _ = await connection.send(["LEASE", "REVOKE", String(lease)].map { Array($0.utf8) }, timeout: plan.requestTimeout)
    }

    private mutating func step(_ words: [String], on connection: BenchConnection) async -> Result<RESPValue, BenchFailureKind> {
        await step(words.map { Array($0.utf8) }, on: connection)
    }

    private mutating func step(
        _ request: [[UInt8]], on connection: BenchConnection, timeout: Duration? = nil
    ) async -> Result<RESPValue, BenchFailureKind> {
        switch await connection.send(request, timeout: timeout ?? plan.requestTimeout) {
        case .success(let reply):
            if case .error(let text) = reply.value {
                await follow(text)
                return .failure(.errorReply(text))
            }
            return .success(reply.value)
        case .failure(let failure):
            abandonConnection()
            return .failure(.transport(failure))
        }
    }
}
