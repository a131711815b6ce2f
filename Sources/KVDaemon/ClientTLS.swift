import KVProtocol
import NIOCore
import NIOSSL

/// The TLS context of a node's `client-tls=` address (docs/SECURITY.md, "TLS"): its certificate
/// chain and key, TLS 1.2 or later, and client certificates as `tls-client-certs` says (checked
/// against `tls-ca-file`).
enum ClientTLS {
    /// How long a closing connection waits for the client's TLS goodbye (NIOSSL's default is
    /// 5 s, which would hold up a node's shutdown behind a silent client).
    static let shutdownTimeout = TimeAmount.seconds(1)

    /// The context for `settings`, or nil when this node has no TLS address. A missing or broken
    /// file ends the start with one line naming it.
    static func context(for node: ClusterNode, settings: ClusterSettings, configFile: String) throws(ConfigError) -> NIOSSLContext? {
        guard node.clientTLS != nil else { return nil }
        func path(_ value: String?, _ name: String) throws(ConfigError) -> String {
            guard let value else {
                throw ConfigError(file: configFile, line: node.line, message: "node \(node.id) has client-tls= but \(name) is not set")
            }
            return UserDirectory.resolve(value, besides: configFile)
        }
        let certificatePath = try path(settings.tlsCertFile, "tls-cert-file")
        let keyPath = try path(settings.tlsKeyFile, "tls-key-file")
        do {
            let (chain, key) = try TLSFiles.identity(certificateFile: certificatePath, keyFile: keyPath)
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
            configuration.minimumTLSVersion = .tlsv12
            configuration.shutdownTimeout = shutdownTimeout
            switch settings.tlsClientCertificates {
            case .none: configuration.certificateVerification = .none
            case .optional: configuration.certificateVerification = .optionalVerification
            case .required: configuration.certificateVerification = .noHostnameVerification
            }
            if settings.tlsClientCertificates != .none {
                configuration.trustRoots = .file(try path(settings.tlsCAFile, "tls-ca-file"))
            }
            return try NIOSSLContext(configuration: configuration)
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(file: configFile, line: nil, message: "TLS for node \(node.id) (\(certificatePath), \(keyPath)): \(error)")
        }
    }
}
