import Glibc
import KVStore
import RaftCore

/// The child process of the SIGKILL crash tests: appends entries to `database` in synced
/// transactions of 1 to 64 entries (sizes drawn from the seed) forever, printing
/// `durable <last index>` and flushing stdout after each `persist` returns. Every entry's payload
/// is `crashWriterPayload(index:bytes:)`, so the test can check content as well as presence. An
/// existing log is continued after its last entry.
func runCrashWriter(database: String, options: BenchOptions) throws(BenchFailure) -> Never {
    let storage: SQLiteLogStorage
    let start: UInt64
    do {
        storage = try SQLiteLogStorage(path: database)
        start = (try storage.load().entries.last?.index.rawValue ?? 0) + 1
    } catch {
        throw BenchFailure("\(error)")
    }
    var random = SplitMix64(seed: options.seed)
    var next = start
    print("ready \(start)")
    fflush(nil)
    while true {
        let count = 1 + random.next() % 64
        let entries = (next..<next + count).map {
            Entry(term: 1, index: LogIndex($0), payload: .command(crashWriterPayload(index: $0, bytes: options.payloadBytes)))
        }
        next += count
        let hardState = HardState(currentTerm: 1, votedFor: 1, commitIndex: LogIndex(next - 1))
        do { try storage.persist(hardState: hardState, entries: entries, snapshot: nil, sync: true) } catch {
            throw BenchFailure("\(error)")
        }
        print("durable \(next - 1)")
        fflush(nil)
    }
}
