import Testing
import Foundation
@testable import KVStore

/// The thin SQLite wrapper: binding and reading every value kind, transactions that roll back on
/// error, the statement cache, and errors that name the file, the SQL and SQLite's message.
@Suite struct SQLiteConnectionTests {
    @Test func bindsAndReadsEveryValueKind() throws {
        let db = try SQLiteConnection.inMemory()
        try db.execute("CREATE TABLE t(i INTEGER, b BLOB, s TEXT, n)")
        let insert = try db.prepare("INSERT INTO t VALUES (?, ?, ?, ?)")
        try insert.run(.integer(Int64.min), .blob([0, 1, 255]), .text("héllo"), .null)
        try insert.run(.integer(7), .blob([]), .text(""), .null)
        let select = try db.prepare("SELECT i, b, s, n FROM t ORDER BY rowid")
        #expect(try select.step())
        #expect(select.int64(at: 0) == Int64.min)
        #expect(select.blob(at: 1) == [0, 1, 255])
        #expect(select.text(at: 2) == "héllo")
        #expect(select.isNull(at: 3))
        #expect(try select.step())
        // An empty blob stays a blob (not NULL), an empty text stays text.
        #expect(select.columnType(at: 1) == .blob)
        #expect(select.blob(at: 1) == [])
        #expect(select.value(at: 2) == .text(""))
        #expect(try !select.step())
    }

    @Test func transactionRollsBackWhenTheBodyThrows() throws {
        let db = try SQLiteConnection.inMemory()
        try db.execute("CREATE TABLE t(k INTEGER PRIMARY KEY)")
        try db.transaction { () throws(SQLiteError) in try db.execute("INSERT INTO t VALUES (?)", .integer(1)) }
        #expect(throws: SQLiteError.self) {
            try db.transaction { () throws(SQLiteError) in
                try db.execute("INSERT INTO t VALUES (?)", .integer(2))
                try db.execute("INSERT INTO t VALUES (?)", .integer(1))  // duplicate key
            }
        }
        #expect(db.isAutocommit)
        #expect(try db.scalarInt64("SELECT count(*) FROM t") == 1)
    }

    @Test func errorsNameTheFileTheSQLAndSQLitesMessage() throws {
        let db = try SQLiteConnection.inMemory()
        do {
            _ = try db.prepare("SELECT * FROM missing_table")
            Issue.record("preparing a query on a missing table succeeded")
        } catch {
            #expect(error.path == ":memory:")
            #expect(error.operation.contains("missing_table"))
            #expect(error.message.contains("no such table"))
            #expect(error.description.contains("SQLite code 1"))
        }
    }

    @Test func cachedStatementsAreResetOnReuse() throws {
        let db = try SQLiteConnection.inMemory()
        try db.execute("CREATE TABLE t(k INTEGER PRIMARY KEY)")
        for key in 1...3 { try db.execute("INSERT INTO t VALUES (?)", .integer(Int64(key))) }
        let first = try db.statement("SELECT k FROM t ORDER BY k")
        #expect(try first.step())
        let again = try db.statement("SELECT k FROM t ORDER BY k")
        #expect(first === again)
        #expect(try again.step() && again.int64(at: 0) == 1)
    }

    @Test func fileDatabaseOpensInWALWithFullSync() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-sqlite-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = try SQLiteConnection(path: dir.appendingPathComponent("t.sqlite").path)
        #expect(try db.scalarText("PRAGMA journal_mode") == "wal")
        #expect(try db.scalarInt64("PRAGMA synchronous") == 2)  // FULL
        #expect(try db.scalarInt64("PRAGMA foreign_keys") == 0)
        #expect(try db.integrityCheck().isEmpty)
    }
}
