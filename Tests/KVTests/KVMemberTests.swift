import KVStore
import RaftCore
import Testing

/// The members' addresses (`kv_members`): written through the log, kept across restarts,
/// snapshots and schema upgrades, and announced with `membersChanged`.
@Suite struct KVMemberTests {
    static let four = MemberAddresses(id: 4, peer: "127.0.0.1:7104", client: "127.0.0.1:7004", metrics: "127.0.0.1:7204")
    static let five = MemberAddresses(id: 5, peer: "[::1]:7105", client: "[::1]:7005", clusterID: "demo")

    @Test func memberOperationsRoundTripThroughTheCodec() throws {
        for operation in [KVOperation.memberSet(Self.four), .memberSet(Self.five), .memberRemove(id: 4)] {
            let command = KVCommand(timestampMillis: 9, operation: operation)
            #expect(try KVCommand(decoding: command.encoded()) == command)
        }
        // Tags 30 and 31 follow the Redis operations; a truncated entry is refused, not trapped on.
        let encoded = KVCommand(timestampMillis: 9, operation: .memberSet(Self.four)).encoded()
        #expect(throws: DecodingError.self) { try KVCommand(decoding: Array(encoded.dropLast(3))) }
    }

    @Test func setReplaceAndRemoveAMember() throws {
        let kv = try KVFixture()
        #expect(try kv.machine.members().isEmpty)
        #expect(try kv.apply(.memberSet(Self.five)) == .ok)
        #expect(try kv.apply(.memberSet(Self.four)) == .ok)
        #expect(try kv.machine.members() == [Self.four, Self.five], "ordered by id")
        var moved = Self.four
        moved.peer = "10.0.0.4:7104"
        moved.metrics = nil
        try kv.apply(.memberSet(moved))
        #expect(try kv.machine.members() == [moved, Self.five])
        try kv.apply(.memberRemove(id: 4))
        try kv.apply(.memberRemove(id: 9))
        #expect(try kv.machine.members() == [Self.five])
        #expect(kv.events == Array(repeating: .membersChanged, count: 5))
    }

    @Test func membersSurviveASnapshotRestore() throws {
        let kv = try KVFixture()
        try kv.apply(.memberSet(Self.four))
        try kv.apply(.memberSet(Self.five))
        let data = try kv.machine.snapshot()
        let other = try KVFixture()
        try other.apply(.memberSet(MemberAddresses(id: 1, peer: "h:1", client: "h:2")))
        let metadata = SnapshotMetadata(
            lastIncludedIndex: kv.machine.appliedIndex, lastIncludedTerm: 1, membership: ClusterMembership(voters: [4, 5]))
        try other.machine.restore(data, metadata: metadata)
        #expect(try other.machine.members() == [Self.four, Self.five])
    }

    @Test func membersSurviveAStreamedSnapshotAndAReopen() throws {
        try StateSnapshotTests.withDirectory { directory in
            let source = try StateSnapshotTests.machine(at: "\(directory)/state.sqlite")
            let command = KVCommand(timestampMillis: 1, operation: .memberSet(Self.four))
            _ = try source.apply([Entry(term: 1, index: 1, payload: .command(command.encoded()))])
            _ = try StateSnapshotTests.transfer(from: "\(directory)/state.sqlite", to: "\(directory)/copy.sqlite", chunkBytes: 512)
            #expect(try StateSnapshotTests.machine(at: "\(directory)/copy.sqlite").members() == [Self.four])
            #expect(try StateSnapshotTests.machine(at: "\(directory)/state.sqlite").members() == [Self.four])
        }
    }

    @Test func aVersionTwoDatabaseIsUpgradedInPlace() throws {
        let database = try SQLiteConnection.inMemory()
        _ = try KVStateMachine(database: database)
        try database.execute("DROP TABLE kv_members")
        try database.execute("UPDATE kv_meta SET value = 2 WHERE name = 'schema_version'")
        let machine = try KVStateMachine(database: database)
        #expect(try database.scalarInt64("SELECT value FROM kv_meta WHERE name = 'schema_version'") == 3)
        #expect(try machine.members().isEmpty)
    }
}
