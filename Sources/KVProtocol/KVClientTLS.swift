public import NIOCore
public import NIOSSL

extension KVClient {
    /// A TLS context for a client: servers are verified against `caFile` (PEM; the system's roots
    /// when nil) including their name or IP address, unless `verifyHostname` is false; `certificateFile`
    /// and `keyFile` (PEM) present a client certificate when the server asks for one.
    public static func tlsContext(
        caFile: String?, certificateFile: String? = nil, keyFile: String? = nil, verifyHostname: Bool = true
    ) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile { configuration.trustRoots = .file(caFile) }
        configuration.certificateVerification = verifyHostname ? .fullVerification : .noHostnameVerification
        if let certificateFile, let keyFile {
            (configuration.certificateChain, configuration.privateKey) = try TLSFiles.identity(
                certificateFile: certificateFile, keyFile: keyFile)
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

/// PEM files of a TLS identity, for clients and for kvd's client and peer listeners.
public enum TLSFiles {
    /// The certificate chain in `certificateFile` and the private key in `keyFile`.
    public static func identity(
        certificateFile: String, keyFile: String
    ) throws -> (chain: [NIOSSLCertificateSource], key: NIOSSLPrivateKeySource) {
        let chain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { NIOSSLCertificateSource.certificate($0) }
        return (chain, .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem)))
    }
}

/// The client side of a TLS connection, for `KVClient` and other RESP clients (`kvctl bench`).
public enum TLSClient {
    /// Adds the TLS handler to a new connection's pipeline, verifying the server by `host`: SNI
    /// and name checks take a name, and an IP address is checked against the certificate's IP
    /// addresses instead. `handshake(on:)` then waits for it, up to `timeout`.
    public static func addHandlers(
        to pipeline: ChannelPipeline.SynchronousOperations, context: NIOSSLContext, host: String, timeout: TimeAmount
    ) throws {
        let serverName = host.contains(where: { $0.isLetter }) && !host.contains(":") ? host : nil
        try pipeline.addHandler(try NIOSSLClientHandler(context: context, serverHostname: serverName))
        try pipeline.addHandler(TLSHandshakeWatcher(done: pipeline.eventLoop.makePromise(), timeout: timeout))
    }

    /// Waits until the TLS handshake on `channel` (set up by `addHandlers`) succeeded; on failure
    /// closes the channel and throws a one-line reason, e.g. a certificate that did not verify.
    public static func handshake(on channel: any Channel) async throws(TLSHandshakeError) {
        do {
            try await channel.pipeline.handler(type: TLSHandshakeWatcher.self).flatMap { $0.done.futureResult }.get()
        } catch {
            channel.close(promise: nil)
            throw TLSHandshakeError(reason: describeConnectError(error))
        }
    }
}

/// A TLS handshake that did not succeed: nothing was sent on the connection.
public struct TLSHandshakeError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { "TLS handshake failed, \(reason)" }
}

/// A failed TLS handshake in a few words, e.g. `certificate verify failed` or `wrong version
/// number` (plain text where TLS was expected), or nil if `error` is not one.
public func tlsFailureReason(_ error: any Error) -> String? {
    guard let error = error as? NIOSSLError, case .handshakeFailed(let failure) = error else { return nil }
    switch failure {
    case .sslError(let stack), .unknownError(let stack):
        // "Error: 268435581 error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at file:line"
        let reasons = stack.map { entry -> String in
            // The code is the last colon-separated word before " at file:line".
            let words = entry.description.split(separator: " ")
            let beforeAt = words.firstIndex(of: "at").map { words[..<$0] } ?? words[...]
            let last = beforeAt.last.map(String.init) ?? entry.description
            let code = last.split(separator: ":").last.map(String.init) ?? last
            return String(code.lowercased().map { $0 == "_" ? " " : $0 })
        }
        return reasons.isEmpty ? "\(failure)" : reasons.joined(separator: ", ")
    default:
        return "\(failure)"
    }
}
