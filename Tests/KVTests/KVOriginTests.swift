import KVStore
import RaftCore
import Testing

/// The origin tag of a forwarded command (docs/PROTOCOL.md, "Followers"): it survives encoding,
/// comes back from applying, and leaves the bytes of untagged commands as they always were.
@Suite struct KVOriginTests {
    @Test func untaggedCommandsKeepFormatOneBytes() throws {
        let command = KVCommand(
            session: SessionStamp(clientID: 7, sequence: 3), timestampMillis: 42,
            operation: .increment(key: bytes("n"), delta: 1, fence: nil))
        let encoded = command.encoded()
        // Format 1: version, session flag + stamp, timestamp, then the operation.
        #expect(encoded.first == 1)
        #expect(try KVCommand(decoding: encoded) == command)
        // A log written before origins existed decodes with no origin.
        #expect(try KVCommand(decoding: encoded).origin == nil)
    }

    @Test func originRoundTripsAndKeepsTheSessionStamp() throws {
        let command = KVCommand(
            session: SessionStamp(clientID: 9, sequence: 12), timestampMillis: 1_000,
            operation: .put(key: bytes("k"), value: bytes("v"), condition: .always, lease: nil, fence: nil),
            origin: ProposalOrigin(nodeID: 2, sequence: UInt64.max - 1))
        let encoded = command.encoded()
        #expect(encoded.first == 2)
        let decoded = try KVCommand(decoding: encoded)
        #expect(decoded == command)
        #expect(decoded.session == SessionStamp(clientID: 9, sequence: 12))
    }

    @Test func truncatedOriginIsRefused() {
        let command = KVCommand(
            timestampMillis: 1, operation: .increment(key: bytes("n"), delta: 1, fence: nil),
            origin: ProposalOrigin(nodeID: 2, sequence: 5))
        let encoded = command.encoded()
        #expect(throws: DecodingError.self) { try KVCommand(decoding: Array(encoded.prefix(20))) }
        #expect(throws: DecodingError.self) { try KVCommand(decoding: [3] + encoded.dropFirst()) }
    }

    @Test func applyingReportsTheOrigin() throws {
        let fixture = try KVFixture()
        let origin = ProposalOrigin(nodeID: 3, sequence: 1)
        let tagged = KVCommand(timestampMillis: 5, operation: .increment(key: bytes("n"), delta: 2, fence: nil), origin: origin)
        let plain = KVCommand(timestampMillis: 6, operation: .increment(key: bytes("n"), delta: 1, fence: nil))
        let applied = try fixture.machine.apply([
            Entry(term: 1, index: 1, payload: .command(tagged.encoded())),
            Entry(term: 1, index: 2, payload: .command(plain.encoded())),
        ])
        #expect(applied.map(\.origin) == [origin, nil])
        #expect(applied.map(\.result) == [.integer(2), .integer(3)])
    }
}
