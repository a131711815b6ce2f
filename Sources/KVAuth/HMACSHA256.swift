import Crypto

/// HMAC-SHA256 (RFC 2104) of a message under a key.
public enum HMACSHA256 {
    public static let byteCount = 32

    public static func authenticate(_ message: [UInt8], key: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }
}
