import Crypto
import CryptoExtras

/// A salted password hash as kept in a users file or a `requirepass` setting:
/// `pbkdf2-sha256$ROUNDS$SALT$DIGEST`, salt and digest in lower-case hex. PBKDF2 with
/// HMAC-SHA256 (RFC 8018) and at least 210,000 rounds (OWASP's figure for this function), so a
/// stolen file costs an attacker that many HMACs per guess; the password itself is never stored.
public struct PasswordHash: Hashable, Sendable, CustomStringConvertible {
    public static let scheme = "pbkdf2-sha256"
    /// The fewest rounds accepted, and the rounds of new hashes.
    public static let roundsMin = 210_000
    /// The most rounds accepted (a hash that would take seconds to check is a mistake).
    public static let roundsMax = 10_000_000
    public static let saltBytes = 16
    public static let digestBytes = 32
    /// The longest password hashed: longer input is refused rather than silently truncated.
    public static let passwordBytesMax = 4_096

    public let rounds: Int
    public let salt: [UInt8]
    public let digest: [UInt8]

    /// A new hash of `password` with a fresh random salt.
    public static func make(password: [UInt8], rounds: Int = roundsMin) throws(PasswordHashError) -> PasswordHash {
        guard (roundsMin...roundsMax).contains(rounds) else { throw .rounds(rounds) }
        guard password.count <= passwordBytesMax else { throw .passwordTooLong }
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<saltBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return PasswordHash(rounds: rounds, salt: salt, digest: try derive(password, salt: salt, rounds: rounds))
    }

    /// Parses `pbkdf2-sha256$ROUNDS$SALT$DIGEST`.
    public init(parsing text: String) throws(PasswordHashError) {
        let parts = text.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == Self.scheme else { throw .format }
        guard let rounds = Int(parts[1]) else { throw .format }
        guard (Self.roundsMin...Self.roundsMax).contains(rounds) else { throw .rounds(rounds) }
        guard let salt = Hex.decode(parts[2]), salt.count >= Self.saltBytes,
            let digest = Hex.decode(parts[3]), digest.count == Self.digestBytes
        else { throw .format }
        self.init(rounds: rounds, salt: salt, digest: digest)
    }

    init(rounds: Int, salt: [UInt8], digest: [UInt8]) {
        self.rounds = rounds
        self.salt = salt
        self.digest = digest
    }

    /// Whether `password` is the one hashed; the comparison takes the same time wherever the
    /// digests differ. Costs `rounds` HMACs: call it off any event loop.
    public func matches(_ password: [UInt8]) -> Bool {
        guard password.count <= Self.passwordBytesMax, let derived = try? Self.derive(password, salt: salt, rounds: rounds)
        else { return false }
        return constantTimeEqual(derived, digest)
    }

    public var description: String {
        "\(Self.scheme)$\(rounds)$\(Hex.encode(salt))$\(Hex.encode(digest))"
    }

    private static func derive(_ password: [UInt8], salt: [UInt8], rounds: Int) throws(PasswordHashError) -> [UInt8] {
        do {
            let key = try KDF.Insecure.PBKDF2.deriveKey(
                from: password, salt: salt, using: .sha256, outputByteCount: digestBytes, rounds: rounds)
            return key.withUnsafeBytes { Array($0) }
        } catch {
            throw .derivation("\(error)")
        }
    }
}

/// Why a password hash cannot be made or parsed.
public enum PasswordHashError: Error, Hashable, Sendable, CustomStringConvertible {
    case format
    case rounds(Int)
    case passwordTooLong
    case derivation(String)

    public var description: String {
        switch self {
        case .format:
            "not a password hash: expected \(PasswordHash.scheme)$ROUNDS$SALT$DIGEST (make one with 'kvctl passwd')"
        case .rounds(let rounds):
            "\(rounds) rounds: a hash needs \(PasswordHash.roundsMin) to \(PasswordHash.roundsMax) rounds"
        case .passwordTooLong: "a password may have at most \(PasswordHash.passwordBytesMax) bytes"
        case .derivation(let detail): "PBKDF2 failed: \(detail)"
        }
    }
}

/// Whether `a` and `b` are equal, in a time that depends only on their lengths.
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices { difference |= a[index] ^ b[index] }
    return difference == 0
}

/// Lower-case hexadecimal.
public enum Hex {
    public static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: Substring) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var index = 0
        while index < chars.count {
            guard let high = value(chars[index]), let low = value(chars[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func value(_ char: UInt8) -> UInt8? {
        switch char {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): char - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): char - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): char - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
