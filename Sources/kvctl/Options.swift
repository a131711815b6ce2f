import ArgumentParser
import KVProtocol
import NIOSSL

/// Options every subcommand takes: where the cluster is.
struct ClusterOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "Client addresses, host:port,... (default: $KVCTL_ENDPOINTS, then --config, then 127.0.0.1:7001,7002,7003)."
    )
    var endpoints: String?

    @Option(name: .long, help: "A cluster.conf file whose node lines give the client addresses.")
    var config: String?

    @Flag(name: .long, help: "Connect with TLS (to the client-tls= addresses of --config).")
    var tls = false

    @Option(name: .long, help: "With --tls: CA certificates (PEM) the servers' certificates must chain to (default: the system's).")
    var cacert: String?

    @Option(name: .long, help: "With --tls: a client certificate (PEM) for servers that ask for one; needs --key.")
    var cert: String?

    @Option(name: .long, help: "With --tls: the private key (PEM) of --cert.")
    var key: String?

    /// The TLS context of `--tls`, or nil.
    func tlsContext() throws -> NIOSSLContext? {
        guard tls else {
            if cacert != nil || cert != nil || key != nil { throw CLIError("--cacert, --cert and --key need --tls", status: 64) }
            return nil
        }
        guard (cert == nil) == (key == nil) else { throw CLIError("--cert and --key go together", status: 64) }
        do {
            return try KVClient.tlsContext(caFile: cacert, certificateFile: cert, keyFile: key)
        } catch {
            throw CLIError("TLS: \(error)")
        }
    }

    @Option(name: .long, help: "User to authenticate as (default: $KVCTL_USER, else 'default' when a password is given).")
    var user: String?

    @Option(name: .long, help: "File whose first line is the password (default: $KVCTL_PASSWORD).")
    var passwordFile: String?

    @Option(name: .long, help: "The password (visible to other users of this machine: prefer --password-file or $KVCTL_PASSWORD).")
    var password: String?

    /// The credentials to authenticate with: the password from `--password`, `--password-file`
    /// or `$KVCTL_PASSWORD` (in that order), the user from `--user`, `$KVCTL_USER` or `default`.
    /// Nil when no password is given (the cluster needs none).
    func credentials() throws -> ClientCredentials? {
        let environmentUser = getenv("KVCTL_USER").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        let secret: String?
        if let password {
            secret = password
        } else if let passwordFile {
            guard let text = ClusterConfigFile.readFile(passwordFile) else { throw CLIError("cannot read password file \(passwordFile)") }
            secret = String(text.prefix { $0 != "\n" && $0 != "\r\n" })
        } else {
            secret = getenv("KVCTL_PASSWORD").map { String(cString: $0) }
        }
        guard let secret else {
            if user != nil { throw CLIError("--user needs a password: --password-file FILE or KVCTL_PASSWORD") }
            return nil
        }
        return ClientCredentials(user: user ?? environmentUser ?? ClientCredentials.defaultUser, password: secret)
    }

    /// The nodes to talk to: `--endpoints`, else `$KVCTL_ENDPOINTS`, else the client
    /// addresses in `--config`, else the local default. Node ids come from `--config` when given.
    func resolveNodes() throws -> [ConfiguredNode] {
        let fromConfig = try config.map { try ClusterConfigFile.nodes(path: $0, tls: tls) }
        let fromEnvironment = getenv("KVCTL_ENDPOINTS").map { String(cString: $0) } ?? ""
        let list: String
        if let endpoints {
            list = endpoints
        } else if !fromEnvironment.isEmpty {
            list = fromEnvironment
        } else if let fromConfig {
            return fromConfig
        } else {
            list = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
        }
        return try KVEndpoint.parseList(list).map { endpoint in
            ConfiguredNode(id: fromConfig?.first { $0.endpoint == endpoint }?.id, endpoint: endpoint)
        }
    }
}

/// The per-request deadline option, shared by all subcommands but `lock` (whose `--timeout` is
/// the time to wait for the lock).
struct TimeoutOption: ParsableArguments {
    @Option(name: .long, help: "Seconds to keep retrying across nodes before giving up.")
    var timeout: Double = 10

    /// A bad `--timeout` is a usage error (exit 64), like every other bad option.
    func validate() throws {
        guard timeout > 0, timeout <= 86_400 else { throw ValidationError("--timeout must be in (0, 86400] seconds") }
    }

    var duration: Duration {
        get throws {
            try validate()
            return .milliseconds(Int64(timeout * 1000))
        }
    }
}

/// A node from the endpoint list, with its id when a config file named it.
struct ConfiguredNode: Sendable {
    var id: String?
    var endpoint: KVEndpoint
}

/// Reads the client addresses out of a cluster.conf: `node <id> peer=... client=host:port ...`
/// lines; `#` starts a comment; setting lines are not kvctl's business and are skipped.
enum ClusterConfigFile {
    static func nodes(path: String, tls: Bool = false) throws -> [ConfiguredNode] {
        let key = tls ? "client-tls=" : "client="
        guard let text = readFile(path) else { throw CLIError("cannot read config file \(path)") }
        var nodes: [ConfiguredNode] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.prefix { $0 != "#" }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard words.first == "node" else { continue }
            guard words.count >= 2, let client = words.first(where: { $0.hasPrefix(key) }) else {
                if !tls, words.contains(where: { $0.hasPrefix("client-tls=") }) {
                    throw CLIError("\(path):\(number + 1): this node serves clients over TLS only (client-tls=): give --tls and --cacert FILE", status: 64)
                }
                throw CLIError("\(path):\(number + 1): node line without \(key)host:port")
            }
            guard let endpoint = KVEndpoint(client.dropFirst(key.count)) else {
                throw CLIError("\(path):\(number + 1): invalid client address '\(client.dropFirst(key.count))'")
            }
            nodes.append(ConfiguredNode(id: String(words[1]), endpoint: endpoint))
        }
        guard !nodes.isEmpty else { throw CLIError("\(path): no node lines") }
        return nodes
    }

    static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            guard bytes.count <= 16 << 20 else { return nil }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
