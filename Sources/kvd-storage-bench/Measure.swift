import Glibc
import KVStore
import RaftCore

/// One row of the result table.
struct BenchRow {
    /// What was measured.
    var label: String
    /// Entries written per commit (1 for the raw writes).
    var entriesPerCommit: Int
    /// One duration per commit.
    var latenciesNanoseconds: [UInt64]
    /// Wall time of the whole row.
    var elapsedNanoseconds: UInt64

    /// Commits (transactions, or write+fdatasync pairs) per second.
    var commitsPerSecond: Double { Double(latenciesNanoseconds.count) / (Double(elapsedNanoseconds) / 1e9) }
    /// Entries made durable per second.
    var entriesPerSecond: Double { commitsPerSecond * Double(entriesPerCommit) }

    /// The latency at `fraction` (0...1) of the sorted samples, in microseconds.
    func percentileMicroseconds(_ fraction: Double) -> Double {
        let sorted = latenciesNanoseconds.sorted()
        guard !sorted.isEmpty else { return 0 }
        let position = min(sorted.count - 1, Int((Double(sorted.count - 1) * fraction).rounded()))
        return Double(sorted[position]) / 1_000
    }
}

/// Runs every measurement and prints the table.
func runBenchmark(_ options: BenchOptions) throws(BenchFailure) {
    let (directory, isTemporary) = try benchDirectory(options.directory)
    defer { if isTemporary { removeTree(directory) } }
    print("kvd-storage-bench: \(directory), \(options.payloadBytes)-byte entries, \(options.secondsPerRow) s per row")
    print("SQLite \(SQLiteLibrary.version), WAL, synchronous=FULL (one fsync per commit)")
    fflush(nil)
    var rows: [BenchRow] = []
    let raw = try measureRawFdatasync(path: directory + "/raw-fdatasync.bin", options: options)
    rows.append(raw)
    for batch in options.batchSizes {
        rows.append(try measureLog(path: directory + "/log-\(batch).sqlite", batch: batch, options: options))
    }
    printTable(rows)
}

/// Appends `batch` entries per synced persist for the configured time.
func measureLog(path: String, batch: Int, options: BenchOptions) throws(BenchFailure) -> BenchRow {
    let storage: SQLiteLogStorage
    do { storage = try SQLiteLogStorage(path: path) } catch { throw BenchFailure("\(error)") }
    let payload = Entry.Payload.command(Array(repeating: 0x5A, count: options.payloadBytes))
    var next: UInt64 = 1
    var latencies: [UInt64] = []
    let start = monotonicNanoseconds()
    let deadline = start + UInt64(options.secondsPerRow * 1e9)
    var now = start
    while now < deadline {
        let entries = (0..<UInt64(batch)).map { Entry(term: 1, index: LogIndex(next + $0), payload: payload) }
        next += UInt64(batch)
        let hardState = HardState(currentTerm: 1, votedFor: 1, commitIndex: LogIndex(next - 1))
        let before = monotonicNanoseconds()
        do { try storage.persist(hardState: hardState, entries: entries, snapshot: nil, sync: true) } catch {
            throw BenchFailure("\(error)")
        }
        now = monotonicNanoseconds()
        latencies.append(now - before)
    }
    return BenchRow(label: "SQLite log", entriesPerCommit: batch, latenciesNanoseconds: latencies, elapsedNanoseconds: now - start)
}

/// Appends `payloadBytes` to a plain file and fdatasyncs it, in a loop: the disk's own rate.
func measureRawFdatasync(path: String, options: BenchOptions) throws(BenchFailure) -> BenchRow {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw BenchFailure("cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    let bytes = [UInt8](repeating: 0x5A, count: options.payloadBytes)
    var offset: off_t = 0
    var latencies: [UInt64] = []
    let start = monotonicNanoseconds()
    let deadline = start + UInt64(options.secondsPerRow * 1e9)
    var now = start
    while now < deadline {
        let before = monotonicNanoseconds()
        let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, offset) }
        guard written == bytes.count, fdatasync(fd) == 0 else {
            throw BenchFailure("write or fdatasync of \(path) failed: \(String(cString: strerror(errno)))")
        }
        offset += off_t(bytes.count)
        now = monotonicNanoseconds()
        latencies.append(now - before)
    }
    return BenchRow(label: "raw fdatasync", entriesPerCommit: 1, latenciesNanoseconds: latencies, elapsedNanoseconds: now - start)
}

/// Prints `rows` as an aligned table.
func printTable(_ rows: [BenchRow]) {
    func pad(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
    func fixed(_ value: Double, _ decimals: Int = 0) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        return decimals == 0 ? String(Int(rounded)) : String(rounded)
    }
    print("")
    print("\(pad("what", 14)) \(pad("batch", 6)) \(pad("commits", 8)) \(pad("commits/s", 10)) \(pad("entries/s", 10)) \(pad("p50 µs", 9)) \(pad("p99 µs", 9))")
    for row in rows {
        print(
            "\(pad(row.label, 14)) \(pad(String(row.entriesPerCommit), 6)) \(pad(String(row.latenciesNanoseconds.count), 8)) "
                + "\(pad(fixed(row.commitsPerSecond), 10)) \(pad(fixed(row.entriesPerSecond), 10)) "
                + "\(pad(fixed(row.percentileMicroseconds(0.5)), 9)) \(pad(fixed(row.percentileMicroseconds(0.99)), 9))")
    }
    fflush(nil)
}

/// The directory to write in: the one given, or a fresh one under the current directory (the
/// repository's disk, not a tmpfs).
func benchDirectory(_ given: String?) throws(BenchFailure) -> (String, Bool) {
    if let given {
        guard mkdir(given, 0o755) == 0 || errno == EEXIST else {
            throw BenchFailure("cannot create \(given): \(String(cString: strerror(errno)))")
        }
        return (given, false)
    }
    var template = Array("./.kvd-storage-bench.XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { buffer in
        buffer.baseAddress.flatMap { mkdtemp($0) }.map { String(cString: $0) }
    }
    guard let made else { throw BenchFailure("cannot create a directory here: \(String(cString: strerror(errno)))") }
    return (made, true)
}

/// Removes the benchmark's files (it writes no subdirectories) and the directory.
func removeTree(_ directory: String) {
    guard let stream = opendir(directory) else { return }
    while let item = readdir(stream) {
        let name = withUnsafeBytes(of: item.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { unlink(directory + "/" + name) }
    }
    closedir(stream)
    rmdir(directory)
}
