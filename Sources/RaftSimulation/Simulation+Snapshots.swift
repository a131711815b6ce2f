import RaftCore

/// The simulated driver's side of snapshots, shaped like kvd's: the state machine's durable copy
/// is the snapshot, a leader serves chunks of its state as of the index RaftCore names, and a
/// follower collects chunks and installs them before storing the snapshot's metadata.
extension Simulation {
    /// Fills a chunk RaftCore asked for. A new transfer names the applied index (this runs before
    /// the `Ready`'s entries are applied), so the state machine is copied as it is now; later
    /// chunks come from that copy. Returns nil when the chunk cannot be served (the copy is gone,
    /// after a crash): the transfer then starts over.
    func fill(_ request: InstallSnapshot, to peer: NodeID, on server: SimServer) throws(InvariantViolation) -> InstallSnapshot? {
        let metadata = request.metadata
        if request.offset == 0, server.outgoing[peer]?.metadata != metadata {
            // A new transfer names the applied index; a resend names the one it pinned, which
            // the state machine may have left behind: then the transfer starts over.
            guard server.machine.appliedIndex == metadata.lastIncludedIndex else {
                server.transfersToRestart.append(peer)
                return nil
            }
            do { server.outgoing[peer] = (metadata, try server.machine.snapshot()) } catch {
                throw InvariantViolation(invariant: "State machine contract", detail: "\(error)")
            }
        }
        guard let copy = server.outgoing[peer], copy.metadata == metadata, request.offset <= copy.data.count else {
            server.transfersToRestart.append(peer)
            return nil
        }
        let end = min(request.offset + server.configuration.snapshotChunkBytes, copy.data.count)
        var filled = request
        filled.data = Array(copy.data[request.offset..<end])
        filled.done = end == copy.data.count
        return filled
    }

    /// Writes accepted chunks to the snapshot being received.
    func receive(_ chunks: [InstallSnapshot], on server: SimServer) throws(InvariantViolation) {
        for chunk in chunks {
            if chunk.offset == 0 { server.incoming = (chunk.metadata, []) }
            guard var incoming = server.incoming, incoming.metadata == chunk.metadata, incoming.data.count == chunk.offset
            else {
                throw InvariantViolation(
                    invariant: "Snapshot contract", detail: "node \(server.id) got a chunk at \(chunk.offset) out of order")
            }
            incoming.data += chunk.data
            server.incoming = incoming
        }
    }

    /// Installs the received snapshot: first the state (durably), then — by the caller — the
    /// metadata in the log storage. A crash in between leaves a durable state ahead of the log,
    /// which `restart` completes.
    func install(_ metadata: SnapshotMetadata, on server: SimServer) throws(InvariantViolation) {
        guard let incoming = server.incoming, incoming.metadata == metadata else {
            throw InvariantViolation(
                invariant: "Snapshot contract", detail: "node \(server.id) must install \(metadata.lastIncludedIndex) without its chunks")
        }
        var machine = KeyValueRegister()
        do { try machine.restore(incoming.data, metadata: metadata) } catch {
            throw InvariantViolation(invariant: "Snapshot contract", detail: "node \(server.id): \(error)")
        }
        server.machine = machine
        server.durableState = SimServer.DurableState(appliedIndex: metadata.lastIncludedIndex, data: incoming.data, installed: metadata)
        server.incoming = nil
    }

    /// Makes the state machine durable as of now (kvd syncs its state database), then lets the
    /// node cut its log there.
    func compact(_ server: SimServer) throws(InvariantViolation) -> Snapshot? {
        let data: [UInt8]
        do { data = try server.machine.snapshot() } catch {
            throw InvariantViolation(invariant: "State machine contract", detail: "\(error)")
        }
        server.durableState = SimServer.DurableState(appliedIndex: server.machine.appliedIndex, data: data, installed: nil)
        guard let snapshot = server.node?.compact(at: server.machine.appliedIndex) else { return nil }
        do { try server.storage.compact(to: snapshot) } catch {
            throw InvariantViolation(invariant: "Storage contract", detail: "node \(server.id): \(error)")
        }
        return snapshot
    }

    /// The state machine a restarting server comes back with, from its durable copy. If that copy
    /// came from a snapshot whose metadata the log storage does not have yet (a crash in the middle
    /// of an install), the install is completed in the log storage first.
    func recoverState(_ server: SimServer, state: inout PersistentState) throws(InvariantViolation) -> KeyValueRegister {
        var machine = KeyValueRegister()
        guard let durable = server.durableState else { return machine }
        if let installed = durable.installed,
            installed.lastIncludedIndex > (state.snapshot?.metadata.lastIncludedIndex ?? .zero)
        {
            do {
                try server.storage.compact(to: Snapshot(metadata: installed, data: []))
                state = try server.storage.load()
            } catch {
                throw InvariantViolation(invariant: "Storage contract", detail: "node \(server.id): \(error)")
            }
            record(.snapshot(server.id, installed.lastIncludedIndex))
        }
        let metadata = state.snapshot?.metadata ?? SnapshotMetadata(lastIncludedIndex: .zero, lastIncludedTerm: .zero, membership: bootstrap)
        guard durable.appliedIndex >= metadata.lastIncludedIndex else {
            throw InvariantViolation(
                invariant: "Snapshot contract",
                detail: "node \(server.id): durable state at \(durable.appliedIndex) is behind the log's snapshot \(metadata.lastIncludedIndex)")
        }
        do {
            try machine.restore(
                durable.data,
                metadata: SnapshotMetadata(
                    lastIncludedIndex: durable.appliedIndex, lastIncludedTerm: metadata.lastIncludedTerm, membership: metadata.membership))
        } catch {
            throw InvariantViolation(invariant: "Snapshot contract", detail: "node \(server.id): \(error)")
        }
        try checker.checkDigest(machine, on: server.id)
        return machine
    }
}
