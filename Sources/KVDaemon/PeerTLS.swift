#if canImport(Glibc)
import Glibc
#endif
import KVProtocol
import NIOCore
import NIOSSL
import RaftCore

/// Mutual TLS between peers (docs/SECURITY.md, "TLS between peers"), on when the configuration
/// names `peer-tls-cert-file`, `peer-tls-key-file` and `peer-tls-ca-file`.
///
/// - Every node uses its one certificate both to listen and to dial, and requires the other
///   side's: both chain to `peer-tls-ca-file` (TLS 1.2 or later), or the TLS handshake fails
///   before a byte of the peer protocol is read.
/// - The chain alone says only "some node of some cluster this CA signs". The peer handshake
///   then names the node at the other end, and its certificate must name that member's host as
///   the replicated membership has it (`identityProblem`): a certificate made for one machine
///   cannot speak for a member on another. Nodes sharing a host share that identity.
public struct PeerTLS: Sendable {
    /// The context a node listens with, and the one it dials with.
    let server: NIOSSLContext
    let client: NIOSSLContext

    /// The contexts of `settings`, or nil when peer TLS is off. A missing or broken file ends the
    /// start with one line naming it.
    public static func load(settings: ClusterSettings, configFile: String) throws(ConfigError) -> PeerTLS? {
        guard let certificate = settings.peerTLSCertFile, let key = settings.peerTLSKeyFile, let authorities = settings.peerTLSCAFile
        else { return nil }
        let certificatePath = UserDirectory.resolve(certificate, besides: configFile)
        let keyPath = UserDirectory.resolve(key, besides: configFile)
        let authoritiesPath = UserDirectory.resolve(authorities, besides: configFile)
        do {
            let (chain, privateKey) = try TLSFiles.identity(certificateFile: certificatePath, keyFile: keyPath)
            // Names are checked against the membership after the peer handshake, not by NIOSSL
            // against the dialed address: the listening side has no name to check the dialer by.
            var server = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: privateKey)
            var client = TLSConfiguration.makeClientConfiguration()
            client.certificateChain = chain
            client.privateKey = privateKey
            server.minimumTLSVersion = .tlsv12
            client.minimumTLSVersion = .tlsv12
            server.certificateVerification = .noHostnameVerification
            client.certificateVerification = .noHostnameVerification
            server.trustRoots = .file(authoritiesPath)
            client.trustRoots = .file(authoritiesPath)
            // A closing connection waits this long for the other side's TLS goodbye (NIOSSL's
            // default is 5 s), no longer than a connection may take to open.
            let goodbye = TimeAmount.milliseconds(Int64(settings.peerConnectTimeoutMillis))
            server.shutdownTimeout = goodbye
            client.shutdownTimeout = goodbye
            return PeerTLS(server: try NIOSSLContext(configuration: server), client: try NIOSSLContext(configuration: client))
        } catch {
            throw ConfigError(
                file: configFile, line: nil,
                message: "peer TLS (\(certificatePath), \(keyPath), \(authoritiesPath)): \(error)")
        }
    }

    /// Why the certificate the other side presented on `pipeline`'s connection cannot speak for
    /// member `member` at `address`, or nil.
    static func identityProblem(on pipeline: ChannelPipeline, member: NodeID, address: HostPort) -> String? {
        let certificate = (try? pipeline.syncOperations.nioSSL_peerCertificate()) ?? nil
        return identityProblem(certificate, member: member, address: address)
    }

    /// Why `certificate` cannot speak for member `member` whose peer address is `address`, or nil
    /// if one of its subject alternative names is that address's host: a DNS name (a `*.` wildcard
    /// covers one leftmost label) or an IP address.
    static func identityProblem(_ certificate: NIOSSLCertificate?, member: NodeID, address: HostPort) -> String? {
        guard let certificate else { return "node \(member) presented no TLS certificate" }
        let names = subjectAlternativeNames(certificate)
        if names.contains(where: { $0.matches(host: address.host) }) { return nil }
        let shown = names.isEmpty ? "none" : names.map(\.description).joined(separator: ", ")
        return "node \(member)'s TLS certificate does not name its peer host \(address.host) (subject alternative names: \(shown))"
    }

    /// The DNS and IP subject alternative names of `certificate`.
    static func subjectAlternativeNames(_ certificate: NIOSSLCertificate) -> [CertificateName] {
        certificate._subjectAlternativeNames().compactMap { name -> CertificateName? in
            let bytes = name.contents.withUnsafeBufferPointer { Array($0) }
            switch name.nameType {
            case .dnsName: return .dns(String(decoding: bytes, as: UTF8.self))
            case .ipAddress: return .ip(bytes)
            default: return nil
            }
        }
    }
}

/// A subject alternative name a peer certificate may be matched by.
enum CertificateName: Equatable, CustomStringConvertible {
    case dns(String)
    /// 4 bytes (IPv4) or 16 (IPv6), in network order.
    case ip([UInt8])

    /// Whether this name covers `host` (a DNS name or an IP address, IPv6 without brackets).
    func matches(host: String) -> Bool {
        switch self {
        case .ip(let bytes):
            return Self.addressBytes(host) == bytes
        case .dns(let pattern):
            let pattern = pattern.lowercased(), host = host.lowercased()
            guard Self.addressBytes(host) == nil else { return false }
            if pattern == host { return true }
            // `*.example.com` covers `a.example.com`, not `example.com` nor `a.b.example.com`.
            guard pattern.hasPrefix("*."), let dot = host.firstIndex(of: ".") else { return false }
            return host[host.index(after: dot)...] == pattern.dropFirst(2) && dot != host.startIndex
        }
    }

    /// The bytes of `host` if it is an IPv4 or IPv6 address literal.
    static func addressBytes(_ host: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    var description: String {
        switch self {
        case .dns(let name): return "DNS:\(name)"
        case .ip(let bytes) where bytes.count == 4: return "IP:" + bytes.map(String.init).joined(separator: ".")
        case .ip(let bytes):
            var address = in6_addr()
            withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes.prefix(16)) }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &address, &text, socklen_t(text.count)) != nil else { return "IP:?" }
            return "IP:" + String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }
}
