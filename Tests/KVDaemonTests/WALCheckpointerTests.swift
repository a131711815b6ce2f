import KVStore
import Testing

@testable import KVDaemon

/// The background checkpointer used to log a failed checkpoint and try again 100 ms later. After
/// a failed fsync the kernel may have dropped the pages it could not write and a later fsync can
/// succeed without them, so an I/O error or a damaged file must stop the node instead; a busy
/// lock or a full disk is still tried again.
@Suite struct WALCheckpointerTests {
    func error(_ code: Int32) -> SQLiteError {
        SQLiteError(path: "state.sqlite", operation: "PRAGMA wal_checkpoint(PASSIVE)", extendedCode: code, message: "m")
    }

    @Test func anIOErrorOrCorruptionStopsTheNode() {
        #expect(WALCheckpointer.mustStop(error(1034)))  // SQLITE_IOERR_FSYNC
        #expect(WALCheckpointer.mustStop(error(778)))  // SQLITE_IOERR_WRITE
        #expect(WALCheckpointer.mustStop(error(10)))  // SQLITE_IOERR
        #expect(WALCheckpointer.mustStop(error(11)))  // SQLITE_CORRUPT
        #expect(WALCheckpointer.mustStop(error(26)))  // SQLITE_NOTADB
    }

    @Test func aBusyLockOrAFullDiskIsTriedAgain() {
        #expect(!WALCheckpointer.mustStop(error(5)))  // SQLITE_BUSY
        #expect(!WALCheckpointer.mustStop(error(6)))  // SQLITE_LOCKED
        #expect(!WALCheckpointer.mustStop(error(13)))  // SQLITE_FULL
        #expect(!WALCheckpointer.mustStop(error(14)))  // SQLITE_CANTOPEN
    }
}
