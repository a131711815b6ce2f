#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Counts of a run in progress.
struct BenchProgressSnapshot: Sendable {
    var clients: Int
    var elapsedNanos: UInt64
    var warmupNanos: UInt64
    var succeeded: Int
    var failed: Int
}

/// The one-line progress display, rewritten in place; only when stdout is a terminal.
enum BenchProgress {
    static var isTerminal: Bool { isatty(1) == 1 }

    /// A reporter that rewrites the line, or nil when stdout is not a terminal.
    static func reporter(totalSeconds: Double?) -> (@Sendable (BenchProgressSnapshot) -> Void)? {
        guard isTerminal else { return nil }
        return { snapshot in
            Output.stdoutText("\r\u{1B}[K" + line(snapshot, totalSeconds: totalSeconds))
        }
    }

    static func line(_ snapshot: BenchProgressSnapshot, totalSeconds: Double?) -> String {
        let elapsed = Double(snapshot.elapsedNanos) / 1e9
        if snapshot.elapsedNanos < snapshot.warmupNanos {
            return "\(snapshot.clients) clients: warming up \(Int(elapsed)) s"
        }
        let measured = Double(snapshot.elapsedNanos - snapshot.warmupNanos) / 1e9
        let rate = measured > 0 ? Double(snapshot.succeeded) / measured : 0
        let of = totalSeconds.map { " of \(Int($0))" } ?? ""
        return "\(snapshot.clients) clients: \(Int(measured))\(of) s, \(snapshot.succeeded) ok (\(Int(rate))/s), \(snapshot.failed) failed"
    }

    /// Erases the progress line.
    static func clear() {
        if isTerminal { Output.stdoutText("\r\u{1B}[K") }
    }
}

extension Output {
    /// Text without a newline.
    static func stdoutText(_ text: String) {
        stdout(Array(text.utf8))
    }
}
