// kvd-storage-bench: how fast can kvd make its Raft log durable?
//
// It persists 128-byte entries through SQLiteLogStorage (WAL, synchronous=FULL: one fsync per
// commit) at 1, 16 and 256 entries per commit, and measures the raw write+fdatasync rate of a
// plain file on the same disk beside it, so the figures say how close the log gets to the disk.
//
// With `--crash-writer DB` it is instead the child process of the SIGKILL crash tests: it appends
// entries forever and prints `durable <index>` after each synced commit returns.

import Glibc
import KVStore
import RaftCore

/// What the command line asked for.
struct BenchOptions {
    /// Where to write; nil for a fresh directory under the current one.
    var directory: String?
    /// How long each table row is measured.
    var secondsPerRow = 2.0
    /// Entries per transaction, one row each.
    var batchSizes = [1, 16, 256]
    /// Bytes per entry payload (and per raw write).
    var payloadBytes = 128
    /// The database of `--crash-writer` mode, if that mode was asked for.
    var crashWriterDatabase: String?
    /// Seeds the crash writer's batch sizes.
    var seed: UInt64 = 1

    /// The help text.
    static let usage = """
        usage: kvd-storage-bench [--dir DIR] [--seconds S] [--batches 1,16,256] [--payload-bytes N]
               kvd-storage-bench --crash-writer DB [--seed N]

          --dir DIR           where to write (default: a fresh directory under the current one, removed after)
          --seconds S         how long to measure each row (default 2)
          --batches LIST      entries per transaction, comma-separated (default 1,16,256)
          --payload-bytes N   bytes per entry (default 128)
          --crash-writer DB   append entries to DB forever, printing "durable <index>" after each synced commit
          --seed N            the crash writer's batch-size seed (default 1)
        """

    /// Parses `arguments` (without the program name), or says what is wrong with them.
    static func parse(_ arguments: [String]) -> Result<BenchOptions, BenchFailure> {
        var options = BenchOptions()
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            if flag == "--help" || flag == "-h" { return .failure(BenchFailure(usage, status: 0)) }
            let known = ["--dir", "--crash-writer", "--seconds", "--batches", "--payload-bytes", "--seed"]
            guard known.contains(flag) else { return .failure(BenchFailure("unknown argument \(flag)\n\(usage)")) }
            guard let value = rest.popFirst() else { return .failure(BenchFailure("\(flag) needs a value\n\(usage)")) }
            switch flag {
            case "--dir": options.directory = value
            case "--crash-writer": options.crashWriterDatabase = value
            case "--seconds":
                guard let seconds = Double(value), seconds > 0 else { return .failure(BenchFailure("bad --seconds \(value)")) }
                options.secondsPerRow = seconds
            case "--batches":
                let sizes = value.split(separator: ",").compactMap { Int($0) }
                guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 }) else { return .failure(BenchFailure("bad --batches \(value)")) }
                options.batchSizes = sizes
            case "--payload-bytes":
                guard let bytes = Int(value), bytes >= 0 else { return .failure(BenchFailure("bad --payload-bytes \(value)")) }
                options.payloadBytes = bytes
            case "--seed":
                guard let seed = UInt64(value) else { return .failure(BenchFailure("bad --seed \(value)")) }
                options.seed = seed
            default: return .failure(BenchFailure("unknown argument \(flag)\n\(usage)"))
            }
        }
        return .success(options)
    }
}

/// A reason to stop, with the exit status.
struct BenchFailure: Error {
    /// What to print.
    var message: String
    /// The exit status (0 for `--help`).
    var status: Int32 = 1
    /// A failure with `message` and exit `status`.
    init(_ message: String, status: Int32 = 1) {
        self.message = message
        self.status = status
    }
}

/// Nanoseconds on the monotonic clock.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// Writes `text` and a newline to standard error.
func printError(_ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

/// The deterministic payload of entry `index`, so that a reader can check it: the index
/// (8 bytes, little-endian) then a pattern derived from it.
func crashWriterPayload(index: UInt64, bytes: Int) -> [UInt8] {
    var payload = (0..<8).map { UInt8(truncatingIfNeeded: index >> (8 * UInt64($0))) }
    payload += (0..<max(bytes - 8, 0)).map { UInt8(truncatingIfNeeded: index &* 31 &+ UInt64($0)) }
    return payload
}

/// Runs the mode the arguments ask for; returns the exit status.
func run() -> Int32 {
    let options: BenchOptions
    switch BenchOptions.parse(Array(CommandLine.arguments.dropFirst())) {
    case .success(let parsed): options = parsed
    case .failure(let failure):
        if failure.status == 0 { print(failure.message) } else { printError("kvd-storage-bench: \(failure.message)") }
        return failure.status
    }
    do {
        if let database = options.crashWriterDatabase {
            try runCrashWriter(database: database, options: options)
        } else {
            try runBenchmark(options)
        }
        return 0
    } catch {
        printError("kvd-storage-bench: \(error)")
        return 1
    }
}

exit(run())
