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

    /// A prompt on stderr, without a line ending.
    static func prompt(_ text: String) {
        writeAll(2, Array(text.utf8))
    }

    /// Rows as aligned columns, two spaces apart (the first row is the header); the last column
    /// is not padded.
    static func table(_ rows: [[String]]) -> String {
        let columnCount = rows.map(\.count).max() ?? 0
        let widths = (0..<columnCount).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count + 2)
            }.joined()
        }.joined(separator: "\n")
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
