import KVAuth
import Logging
import NIOCore
import NIOPosix
import RaftCore
import Synchronization
import Testing

@testable import KVDaemon

/// Log lines captured for assertions.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    func contains(_ text: String) -> Bool { all.contains { $0.contains(text) } }

    var logger: Logger {
        Logger(label: "kvd-test", factory: { _ in Handler(lines: self) })
    }

    struct Handler: LogHandler {
        let lines: LogLines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { lines.append("\(event.message)") }
    }
}

/// The cluster secret's challenge–response in the peer handshake (docs/SECURITY.md, "Peers").
@Suite(.serialized) struct PeerSecretTests {
    let group = MultiThreadedEventLoopGroup.singleton
    static let secret = try? PeerSecret(key: Array("a-cluster-secret-of-enough-bytes".utf8))
    static let otherSecret = try? PeerSecret(key: Array("another-secret-of-enough-bytes!!".utf8))

    @Test("proofs depend on the secret, both nonces, both ids and the role; a short secret is refused")
    func proofs() throws {
        let secret = try #require(Self.secret), other = try #require(Self.otherSecret)
        let nD = [UInt8](repeating: 1, count: 32), nL = [UInt8](repeating: 2, count: 32)
        let base = secret.listenerProof(cluster: "c", listener: 1, dialer: 2, dialerNonce: nD, listenerNonce: nL)
        #expect(base.count == PeerSecret.proofBytes)
        #expect(base == secret.listenerProof(cluster: "c", listener: 1, dialer: 2, dialerNonce: nD, listenerNonce: nL))
        #expect(base != other.listenerProof(cluster: "c", listener: 1, dialer: 2, dialerNonce: nD, listenerNonce: nL))
        #expect(base != secret.listenerProof(cluster: "c", listener: 1, dialer: 2, dialerNonce: nD, listenerNonce: nD), "a fresh nonce changes it")
        #expect(base != secret.listenerProof(cluster: "c", listener: 2, dialer: 1, dialerNonce: nD, listenerNonce: nL))
        #expect(base != secret.listenerProof(cluster: "d", listener: 1, dialer: 2, dialerNonce: nD, listenerNonce: nL))
        #expect(base != secret.dialerProof(cluster: "c", dialer: 2, listener: 1, dialerNonce: nD, listenerNonce: nL), "roles differ")
        #expect(throws: ConfigError.self) { try PeerSecret(key: Array("short".utf8)) }
        #expect(PeerSecret.nonce() != PeerSecret.nonce())
    }

    @Test("a version 3 handshake carries its nonce and proof; a proof frame round-trips; bad flags are malformed")
    func wire() throws {
        let handshake = PeerHandshake(
            clusterID: "demo", sender: 2, receiver: 1, nonce: [UInt8](repeating: 9, count: 32), proof: [UInt8](repeating: 4, count: 32))
        var buffer = ByteBuffer()
        PeerWire.write(.handshake(handshake), to: &buffer)
        PeerWire.write(.proof([UInt8](repeating: 5, count: 32)), to: &buffer)
        let parser = PeerFrameParser(frameBytesMax: 1 << 20)
        #expect(try parser.next(from: &buffer) == .handshake(handshake))
        #expect(try parser.next(from: &buffer) == .proof([UInt8](repeating: 5, count: 32)))
        #expect(throws: PeerWireError.self) { try PeerWire.decodeFrame(type: PeerWire.FrameType.proof.rawValue, payload: [1, 2, 3]) }
        var bad = ByteBuffer()
        PeerWire.write(.handshake(PeerHandshake(clusterID: "demo", sender: 2, receiver: 1, nonce: [UInt8](repeating: 0, count: 32))), to: &bad)
        // The flags byte follows magic, version, cluster id (8 + 4 bytes) and two ids.
        bad.setInteger(UInt8(7), at: 4 + 1 + 4 + 1 + 8 + 4 + 16)
        #expect(throws: PeerWireError.malformed("handshake flags 7")) { try parser.next(from: &bad) }
    }

    /// Two transports of one cluster with the given secrets; whether node 2's vote reached node 1.
    func connect(_ first: PeerSecret?, _ second: PeerSecret?, logs: LogLines) async throws -> (delivered: Bool, connected: Int) {
        let ports = freePorts(2)
        let config = try loopbackConfig(ids: [1, 2], peerPorts: ports)
        let node1 = try await PeerTransport.start(config: config, selfID: 1, group: group, logger: logs.logger, secret: first)
        let node2 = try await PeerTransport.start(config: config, selfID: 2, group: group, logger: logs.logger, secret: second)
        let inbox = Inbox(node1)
        let delivered = await eventually(within: first == second ? 15 : 2) {
            node2.send([vote(from: 2, to: 1, term: 1)])
            return !inbox.messages.isEmpty
        }
        let connected = node1.counters().connectedPeers + node2.counters().connectedPeers
        await node1.shutdown()
        await node2.shutdown()
        return (delivered, connected)
    }

    @Test("peers with the same secret connect; another secret or none is refused, logged on both sides, and delivers nothing")
    func handshakes() async throws {
        let secret = try #require(Self.secret), other = try #require(Self.otherSecret)
        let same = LogLines()
        let ok = try await connect(secret, secret, logs: same)
        #expect(ok.delivered)
        #expect(same.contains("cluster secret proved"))

        let wrong = LogLines()
        let refused = try await connect(secret, other, logs: wrong)
        #expect(!refused.delivered && refused.connected == 0)
        #expect(wrong.contains("proved another cluster secret"), "\(wrong.all)")
        #expect(wrong.contains("closed by the other side"), "the other side logs the reason too: \(wrong.all)")

        let missingAtDialer = LogLines()
        let noSecret = try await connect(secret, nil, logs: missingAtDialer)
        #expect(!noSecret.delivered && noSecret.connected == 0)
        #expect(missingAtDialer.contains("requires a cluster secret (peer-secret-file) and node 2 has none"), "\(missingAtDialer.all)")

        let missingAtListener = LogLines()
        let onlyDialer = try await connect(nil, secret, logs: missingAtListener)
        #expect(!onlyDialer.delivered && onlyDialer.connected == 0)
        #expect(missingAtListener.contains("node 2 requires a cluster secret (peer-secret-file) and node 1 proved none"), "\(missingAtListener.all)")
    }

    @Test("a replayed dialer proof fails against a fresh listener nonce")
    func replay() throws {
        let secret = try #require(Self.secret)
        let dialerNonce = PeerSecret.nonce()
        let recorded = secret.dialerProof(cluster: "c", dialer: 2, listener: 1, dialerNonce: dialerNonce, listenerNonce: PeerSecret.nonce())
        let fresh = secret.dialerProof(cluster: "c", dialer: 2, listener: 1, dialerNonce: dialerNonce, listenerNonce: PeerSecret.nonce())
        #expect(!PeerSecret.matches(recorded, fresh))
        #expect(!PeerSecret.matches(nil, fresh))
    }
}
