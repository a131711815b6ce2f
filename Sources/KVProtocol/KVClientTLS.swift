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
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
        }
        return try NIOSSLContext(configuration: configuration)
    }
}
