import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import RaftCore
import Testing

@testable import KVDaemon

/// Mutual TLS between peers (docs/SECURITY.md, "TLS between peers"): the chain is checked by the
/// TLS handshake, the node's identity against the membership's peer host.
@Suite(.serialized) struct PeerTLSTests {
    let group = MultiThreadedEventLoopGroup.singleton

    /// The TLS fixtures (scripts/make-test-certs.sh).
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tls").path

    /// Peer TLS from the fixture files `certificate` (and its key) and `authorities`.
    static func tls(_ certificate: String = "peer", authorities: String = "ca") throws -> PeerTLS? {
        var settings = ClusterSettings()
        settings.peerTLSCertFile = "\(fixtures)/\(certificate).pem"
        settings.peerTLSKeyFile = "\(fixtures)/\(certificate).key"
        settings.peerTLSCAFile = "\(fixtures)/\(authorities).pem"
        return try PeerTLS.load(settings: settings, configFile: "\(fixtures)/cluster.conf")
    }

    @Test("a name covers a host: IP addresses by their bytes, DNS names exactly or by a one-label wildcard, any case")
    func names() {
        #expect(CertificateName.ip([127, 0, 0, 1]).matches(host: "127.0.0.1"))
        #expect(!CertificateName.ip([127, 0, 0, 1]).matches(host: "127.0.0.2"))
        #expect(CertificateName.ip([UInt8](repeating: 0, count: 15) + [1]).matches(host: "::1"))
        #expect(!CertificateName.ip([127, 0, 0, 1]).matches(host: "localhost"))
        #expect(CertificateName.dns("kvd-1.example.com").matches(host: "KVD-1.example.com"))
        #expect(!CertificateName.dns("kvd-1.example.com").matches(host: "kvd-2.example.com"))
        #expect(CertificateName.dns("*.example.com").matches(host: "kvd-1.example.com"))
        #expect(!CertificateName.dns("*.example.com").matches(host: "example.com"))
        #expect(!CertificateName.dns("*.example.com").matches(host: "a.kvd-1.example.com"))
        #expect(!CertificateName.dns("127.0.0.1").matches(host: "127.0.0.1"), "an address is matched by IP names only")
        #expect(CertificateName.ip([127, 0, 0, 1]).description == "IP:127.0.0.1")
        #expect(CertificateName.ip([UInt8](repeating: 0, count: 15) + [1]).description == "IP:::1")
    }

    @Test("a certificate speaks for a member whose peer host it names, and for no other")
    func identity() throws {
        let peer = try NIOSSLCertificate.fromPEMFile("\(Self.fixtures)/peer.pem")[0]
        let elsewhere = try NIOSSLCertificate.fromPEMFile("\(Self.fixtures)/peer-elsewhere.pem")[0]
        #expect(PeerTLS.identityProblem(peer, member: 2, address: HostPort(host: "127.0.0.1", port: 7102)) == nil)
        #expect(PeerTLS.identityProblem(peer, member: 2, address: HostPort(host: "localhost", port: 7102)) == nil)
        #expect(PeerTLS.identityProblem(elsewhere, member: 2, address: HostPort(host: "elsewhere.example", port: 7102)) == nil)
        let problem = PeerTLS.identityProblem(elsewhere, member: 2, address: HostPort(host: "127.0.0.1", port: 7102))
        #expect(
            problem
                == "node 2's TLS certificate does not name its peer host 127.0.0.1 (subject alternative names: DNS:elsewhere.example, IP:192.0.2.7)")
        #expect(PeerTLS.identityProblem(nil, member: 3, address: HostPort(host: "127.0.0.1", port: 1)) == "node 3 presented no TLS certificate")
    }

    @Test("peer TLS needs all three files; a missing file is one line naming it")
    func configuration() throws {
        let base = "cluster-id t\nnode 1 peer=127.0.0.1:7101 client=127.0.0.1:7001\n"
        #expect(throws: ConfigError.self) { try ClusterConfig.parse(base + "peer-tls-cert-file a.pem\n", file: "c.conf") }
        let parsed = try ClusterConfig.parse(base + "peer-tls-cert-file a.pem\npeer-tls-key-file a.key\npeer-tls-ca-file ca.pem\n", file: "c.conf")
        #expect(parsed.settings.peerTLSCAFile == "ca.pem")
        #expect(throws: ConfigError.self) { try PeerTLS.load(settings: parsed.settings, configFile: "/nonexistent/c.conf") }
        #expect(try PeerTLS.load(settings: ClusterSettings(), configFile: "c.conf") == nil)
    }

    /// Two transports of one cluster with the given TLS; whether node 2's vote reached node 1
    /// (waiting long for it only when `expected`).
    func connect(_ first: PeerTLS?, _ second: PeerTLS?, expected: Bool = false, logs: LogLines) async throws -> Bool {
        let ports = freePorts(2)
        let config = try loopbackConfig(ids: [1, 2], peerPorts: ports)
        let node1 = try await PeerTransport.start(config: config, selfID: 1, group: group, logger: logs.logger, tls: first)
        let node2 = try await PeerTransport.start(config: config, selfID: 2, group: group, logger: logs.logger, tls: second)
        let inbox = Inbox(node1)
        let delivered = await eventually(within: expected ? 15 : 2) {
            node2.send([vote(from: 2, to: 1, term: 1)])
            return !inbox.messages.isEmpty
        }
        await node1.shutdown()
        await node2.shutdown()
        return delivered
    }

    @Test("peers with certificates of the cluster's CA connect; a certificate for another host, another CA or plain TCP is refused and logged")
    func handshakes() async throws {
        let mutual = LogLines()
        #expect(try await connect(try Self.tls(), try Self.tls(), expected: true, logs: mutual))
        #expect(mutual.contains("mutual TLS"), "\(mutual.all)")

        let impostor = LogLines()
        #expect(!(try await connect(try Self.tls(), try Self.tls("peer-elsewhere"), logs: impostor)))
        #expect(impostor.contains("does not name its peer host 127.0.0.1"), "\(impostor.all)")

        // Node 2 trusts only another authority (the client certificate stands in for one).
        let untrusted = LogLines()
        #expect(!(try await connect(try Self.tls(), try Self.tls(authorities: "client"), logs: untrusted)))
        #expect(untrusted.contains("TLS handshake failed"), "\(untrusted.all)")

        let plainDialer = LogLines()
        #expect(!(try await connect(try Self.tls(), nil, logs: plainDialer)))
        #expect(plainDialer.contains("refused peer connection"), "\(plainDialer.all)")
    }
}
