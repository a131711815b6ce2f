import KVAuth
import RaftCore

#if canImport(Glibc)
import Glibc
#endif

/// The cluster secret peers prove they hold (`peer-secret-file`), by challenge–response: never
/// sent on the wire, and a captured handshake cannot be replayed (docs/SECURITY.md, "Peers").
///
/// 1. The dialing node D sends its handshake with a fresh random nonce `nD`.
/// 2. The listening node L answers with its own fresh nonce `nL` and the proof
///    `HMAC-SHA256(secret, "kvd-peer-listener" | cluster | L | D | nD | nL)`.
/// 3. D checks it (in constant time), then sends the proof
///    `HMAC-SHA256(secret, "kvd-peer-dialer" | cluster | D | L | nL | nD)`; L checks it before it
///    accepts any message.
///
/// Each proof covers both nonces, so one recorded from an earlier connection fails against a
/// fresh nonce; the two roles use different labels, so a proof cannot be reflected back to the
/// node that made it. A side with a secret refuses a side without one, and says why.
public struct PeerSecret: Sendable, Hashable {
    public static let nonceBytes = 32
    public static let proofBytes = HMACSHA256.byteCount
    /// The shortest secret accepted: 128 bits of key (`openssl rand -hex 32` gives 64 characters).
    public static let secretBytesMin = 16
    public static let secretBytesMax = 4096

    let key: [UInt8]

    public init(key: [UInt8]) throws(ConfigError) {
        guard (Self.secretBytesMin...Self.secretBytesMax).contains(key.count) else {
            throw ConfigError(
                file: "peer-secret-file", line: nil,
                message: "a cluster secret needs \(Self.secretBytesMin) to \(Self.secretBytesMax) bytes, not \(key.count)")
        }
        self.key = key
    }

    /// The secret in `path` (its first line; a relative path is taken from the configuration
    /// file's folder). The file should be readable by kvd's user only.
    public static func load(path: String, configFile: String) throws(ConfigError) -> PeerSecret {
        let full = UserDirectory.resolve(path, besides: configFile)
        let text: String
        do {
            text = try readTextFile(path: full, bytesMax: secretBytesMax + 2)
        } catch {
            throw ConfigError(file: full, line: nil, message: error.reason)
        }
        let line = text.prefix { $0 != "\n" && $0 != "\r\n" && $0 != "\r" }
        do {
            return try PeerSecret(key: Array(line.utf8))
        } catch {
            throw ConfigError(file: full, line: nil, message: error.message)
        }
    }

    /// Whether others than the owner may read `path` (the daemon logs a warning).
    public static func isExposed(path: String, configFile: String) -> Bool {
        let full = UserDirectory.resolve(path, besides: configFile)
        var info = stat()
        guard stat(full, &info) == 0 else { return false }
        return info.st_mode & 0o077 != 0
    }

    /// A fresh random nonce.
    public static func nonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<nonceBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// The listening node's proof on a connection from `dialer` to `listener`.
    func listenerProof(cluster: String, listener: NodeID, dialer: NodeID, dialerNonce: [UInt8], listenerNonce: [UInt8]) -> [UInt8] {
        proof("kvd-peer-listener", cluster: cluster, first: listener, second: dialer, dialerNonce + listenerNonce)
    }

    /// The dialing node's proof on a connection from `dialer` to `listener`.
    func dialerProof(cluster: String, dialer: NodeID, listener: NodeID, dialerNonce: [UInt8], listenerNonce: [UInt8]) -> [UInt8] {
        proof("kvd-peer-dialer", cluster: cluster, first: dialer, second: listener, listenerNonce + dialerNonce)
    }

    private func proof(_ label: String, cluster: String, first: NodeID, second: NodeID, _ nonces: [UInt8]) -> [UInt8] {
        var message = Array(label.utf8) + [0]
        message += Array(cluster.utf8) + [0]
        for id in [first.rawValue, second.rawValue] {
            for shift in stride(from: 0, to: 64, by: 8) { message.append(UInt8(truncatingIfNeeded: id >> UInt64(shift))) }
        }
        message += nonces
        return HMACSHA256.authenticate(message, key: key)
    }

    /// Whether `proof` is the expected one, compared in constant time.
    static func matches(_ proof: [UInt8]?, _ expected: [UInt8]) -> Bool {
        guard let proof else { return false }
        return constantTimeEqual(proof, expected)
    }
}
