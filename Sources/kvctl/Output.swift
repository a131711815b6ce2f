#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Unbuffered writes to stdout and stderr. `write(2)` rather than `print`, so that output
/// reaches a pipe at once (the lock token must be readable as soon as the lock is held) and
/// binary values are written byte for byte.
enum Output {
    static func stdout(_ bytes: [UInt8]) {
        writeAll(1, bytes)
    }

    static func line(_ text: String) {
        writeAll(1, Array((text + "\n").utf8))
    }

    static func error(_ text: String) {
        writeAll(2, Array((text + "\n").utf8))
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }
}

/// A failure kvctl reports as one line, `kvctl: <message>`, with an exit status.
struct CLIError: Error {
    /// Exit status for a failure that definitely had no effect (or nothing to do with effects).
    static let failure: Int32 = 1
    /// Exit status when a write may or may not have taken effect.
    static let indeterminate: Int32 = 3

    var message: String
    var status: Int32 = CLIError.failure

    init(_ message: String, status: Int32 = CLIError.failure) {
        self.message = message
        self.status = status
    }
}
