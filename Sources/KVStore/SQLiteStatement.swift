internal import CSQLite

/// A value bound to a statement parameter or read from a result column.
public enum SQLiteValue: Hashable, Sendable, ExpressibleByIntegerLiteral, ExpressibleByStringLiteral,
    ExpressibleByNilLiteral
{
    /// A 64-bit signed integer.
    case integer(Int64)
    /// Raw bytes (an empty array is stored as an empty blob, not NULL).
    case blob([UInt8])
    /// UTF-8 text.
    case text(String)
    /// SQL NULL.
    case null

    /// An integer literal binds as `.integer`.
    public init(integerLiteral value: Int64) { self = .integer(value) }
    /// A string literal binds as `.text`.
    public init(stringLiteral value: String) { self = .text(value) }
    /// `nil` binds as `.null`.
    public init(nilLiteral: ()) { self = .null }
}

/// The storage class of a result column in the current row.
public enum SQLiteColumnType: Hashable, Sendable {
    /// A 64-bit signed integer.
    case integer
    /// A floating-point number (kvd writes none).
    case float
    /// Text.
    case text
    /// Bytes.
    case blob
    /// SQL NULL.
    case null
}

/// SQLite's `SQLITE_TRANSIENT` (a destructor value of -1), which Swift does not import: it tells
/// SQLite to copy bound bytes before the bind call returns, so Swift's buffers may go away.
private var transientDestructor: sqlite3_destructor_type {
    unsafeBitCast(-1 as Int, to: sqlite3_destructor_type.self)
}

/// A prepared statement. Bind parameters (1-based), `step()` through the rows reading columns
/// (0-based), then `reset()` to run it again with new parameters. The statement is finalised when
/// the object goes away; it keeps its database open until then (the connection closes with
/// `sqlite3_close_v2`), so it can never dangle.
///
/// Not thread-safe: use a statement only from the isolation domain that owns its connection.
///
///     let insert = try db.prepare("INSERT INTO kv(key, value) VALUES (?, ?)")
///     try insert.run(.text("greeting"), .blob(Array("hello".utf8)))
///
///     let select = try db.prepare("SELECT value FROM kv WHERE key = ?")
///     try select.bind(.text("greeting"))
///     while try select.step() { print(select.blob(at: 0)) }
///     select.reset()
public final class SQLiteStatement {
    /// The SQL text the statement was prepared from.
    public let sql: String
    /// The database file, for error messages.
    public let path: String
    /// The `sqlite3_stmt`, owned by this object.
    let handle: OpaquePointer

    init(handle: OpaquePointer, sql: String, path: String) {
        self.handle = handle
        self.sql = sql
        self.path = path
    }

    deinit { sqlite3_finalize(handle) }

    private func failure(_ code: Int32, _ operation: String) -> SQLiteError {
        lastError(sqlite3_db_handle(handle), code: code, path: path, operation: operation)
    }

    // MARK: Binding

    /// The number of `?` parameters in the statement.
    public var parameterCount: Int32 { sqlite3_bind_parameter_count(handle) }

    /// Binds `value` to the 1-based parameter `index`.
    public func bind(_ value: SQLiteValue, at index: Int32) throws(SQLiteError) {
        let code: Int32
        switch value {
        case .integer(let number): code = sqlite3_bind_int64(handle, index, number)
        case .blob(let bytes): code = Self.bindBlob(bytes, to: handle, at: index)
        case .text(let string):
            code = string.withCString { sqlite3_bind_text(handle, index, $0, -1, transientDestructor) }
        case .null: code = sqlite3_bind_null(handle, index)
        }
        guard code == SQLITE_OK else { throw failure(code, "bind parameter \(index) of \(sql)") }
    }

    private static func bindBlob(_ bytes: [UInt8], to handle: OpaquePointer, at index: Int32) -> Int32 {
        // An empty array has no base address, and binding a nil pointer would store NULL.
        if bytes.isEmpty { return sqlite3_bind_zeroblob(handle, index, 0) }
        return bytes.withUnsafeBytes { raw in
            sqlite3_bind_blob64(handle, index, raw.baseAddress, sqlite3_uint64(raw.count), transientDestructor)
        }
    }

    /// Binds an integer to the 1-based parameter `index`.
    public func bind(_ value: Int64, at index: Int32) throws(SQLiteError) { try bind(.integer(value), at: index) }

    /// Binds bytes (as a blob) to the 1-based parameter `index`.
    public func bind(_ value: [UInt8], at index: Int32) throws(SQLiteError) { try bind(.blob(value), at: index) }

    /// Binds text to the 1-based parameter `index`.
    public func bind(_ value: String, at index: Int32) throws(SQLiteError) { try bind(.text(value), at: index) }

    /// Binds NULL to the 1-based parameter `index`.
    public func bindNull(at index: Int32) throws(SQLiteError) { try bind(.null, at: index) }

    /// Binds `values` to parameters 1, 2, ... in order.
    public func bind(_ values: SQLiteValue...) throws(SQLiteError) { try bind(values) }

    /// Binds `values` to parameters 1, 2, ... in order.
    public func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
        for (offset, value) in values.enumerated() { try bind(value, at: Int32(offset + 1)) }
    }

    // MARK: Running

    /// Runs the statement to its next row. Returns true when a row is available for the column
    /// readers, false when the statement is done.
    @discardableResult
    public func step() throws(SQLiteError) -> Bool {
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = failure(code, sql)
            // Leave the statement ready for reuse even after a failure (a cached statement
            // would otherwise keep returning the old error, or hold a read transaction open).
            sqlite3_reset(handle)
            throw error
        }
    }

    /// Makes the statement ready to run again and clears its parameter bindings. It does not
    /// report the previous run's error: `step()` already threw it.
    public func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// Resets, binds `values`, runs the statement to completion (ignoring any rows) and resets it
    /// again. The one-liner for INSERT, UPDATE and DELETE.
    public func run(_ values: SQLiteValue...) throws(SQLiteError) { try run(values) }

    /// Resets, binds `values`, runs the statement to completion (ignoring any rows) and resets it.
    public func run(_ values: [SQLiteValue]) throws(SQLiteError) {
        reset()
        defer { reset() }
        try bind(values)
        while try step() {}
    }

    /// Resets, binds `values` and calls `body` once per result row, then resets the statement.
    /// `body` reads the current row through the column readers of the statement it is given.
    public func forEachRow<E: Error>(
        _ values: [SQLiteValue] = [], mapError: (SQLiteError) -> E, _ body: (SQLiteStatement) throws(E) -> Void
    ) throws(E) {
        reset()
        defer { reset() }
        do { try bind(values) } catch { throw mapError(error) }
        while true {
            let hasRow: Bool
            do { hasRow = try step() } catch { throw mapError(error) }
            guard hasRow else { return }
            try body(self)
        }
    }

    /// Resets, binds `values` and calls `body` once per result row, then resets the statement.
    public func forEachRow(
        _ values: SQLiteValue..., body: (SQLiteStatement) throws(SQLiteError) -> Void
    ) throws(SQLiteError) {
        try forEachRow(values, mapError: { $0 }, body)
    }

    // MARK: Reading the current row

    /// The number of columns in a result row.
    public var columnCount: Int32 { sqlite3_column_count(handle) }

    /// The name of the 0-based `column`.
    public func columnName(at column: Int32) -> String {
        guard let name = sqlite3_column_name(handle, column) else { return "" }
        return String(cString: name)
    }

    /// The storage class of `column` in the current row; check it before the typed readers when a
    /// wrong type must be detected (they convert silently, as SQLite does).
    public func columnType(at column: Int32) -> SQLiteColumnType {
        switch sqlite3_column_type(handle, column) {
        case SQLITE_INTEGER: return .integer
        case SQLITE_FLOAT: return .float
        case SQLITE_TEXT: return .text
        case SQLITE_BLOB: return .blob
        default: return .null
        }
    }

    /// True when `column` of the current row is NULL.
    public func isNull(at column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    /// `column` of the current row as an integer (NULL reads as 0).
    public func int64(at column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    /// `column` of the current row as bytes (NULL reads as empty).
    public func blob(at column: Int32) -> [UInt8] {
        // Ask for the pointer first, then the size, as SQLite documents: a type conversion
        // triggered by the first call would invalidate a size read before it.
        guard let pointer = sqlite3_column_blob(handle, column) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, column))
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// `column` of the current row as UTF-8 text (NULL reads as empty; invalid UTF-8 is repaired).
    public func text(at column: Int32) -> String {
        guard let pointer = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    /// `column` of the current row as a value of its own storage class (a float reads as text
    /// of its decimal form, since kvd stores no floats).
    public func value(at column: Int32) -> SQLiteValue {
        switch columnType(at: column) {
        case .integer: return .integer(int64(at: column))
        case .float, .text: return .text(text(at: column))
        case .blob: return .blob(blob(at: column))
        case .null: return .null
        }
    }
}
