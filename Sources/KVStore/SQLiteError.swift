internal import CSQLite
public import RaftCore

/// A failed SQLite call, with everything an operator needs to act on it: which database file,
/// which operation (the SQL text or the API step), SQLite's extended result code and its own
/// message (`sqlite3_errmsg`).
public struct SQLiteError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The database file (`:memory:` for an in-memory database).
    public var path: String
    /// What was being done: the SQL text, or a step such as `open` or `bind parameter 2 of ...`.
    public var operation: String
    /// SQLite's extended result code (for example 778, `SQLITE_IOERR_WRITE`).
    public var extendedCode: Int32
    /// SQLite's message for the failure.
    public var message: String

    /// Creates an error from its parts.
    public init(path: String, operation: String, extendedCode: Int32, message: String) {
        self.path = path
        self.operation = operation
        self.extendedCode = extendedCode
        self.message = message
    }

    /// The primary result code (the low byte of the extended code), e.g. `SQLITE_IOERR`.
    public var primaryCode: Int32 { extendedCode & 0xFF }

    /// Another connection held a lock this operation needed (`SQLITE_BUSY`, `SQLITE_LOCKED`).
    public var isBusy: Bool { primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED }

    /// True when the file is not a database or its content is damaged: the data cannot be trusted.
    public var isCorruption: Bool { primaryCode == SQLITE_CORRUPT || primaryCode == SQLITE_NOTADB }

    /// True for `SQLITE_IOERR` (a read, write or fsync the operating system refused): after a
    /// failed fsync the unwritten pages may be gone, so the operation must not simply be retried.
    public var isIOError: Bool { primaryCode == SQLITE_IOERR }

    /// True when the disk or file system failed or is full: retrying on the same disk will not help.
    public var isIOFailure: Bool {
        primaryCode == SQLITE_IOERR || primaryCode == SQLITE_FULL || primaryCode == SQLITE_CANTOPEN
            || primaryCode == SQLITE_READONLY || primaryCode == SQLITE_PROTOCOL
    }

    /// The symbolic name SQLite gives the primary code (`sqlite3_errstr`), e.g. "disk I/O error".
    public var codeDescription: String {
        guard let text = sqlite3_errstr(extendedCode) else { return "unknown error" }
        return String(cString: text)
    }

    /// One line: file, operation, SQLite's message, its extended code and the code's meaning.
    public var description: String {
        "\(path): \(operation): \(message) (SQLite code \(extendedCode), \(codeDescription))"
    }

    /// The Raft storage error this failure stands for: `.corrupt` when the file is damaged or not
    /// a database, `.io` otherwise (a full disk, a failed write or fsync, a locked or unopenable
    /// file). Either way the node must stop.
    public var storageError: StorageError {
        isCorruption ? .corrupt(description) : .io(description)
    }
}

/// Builds the error for the last failure on `db` (which may be nil when opening failed early).
func lastError(_ db: OpaquePointer?, code: Int32, path: String, operation: String) -> SQLiteError {
    guard let db else {
        return SQLiteError(path: path, operation: operation, extendedCode: code, message: String(cString: sqlite3_errstr(code)))
    }
    let extended = sqlite3_extended_errcode(db)
    // sqlite3_errmsg describes the most recent failing call on this connection; when a later
    // successful call has cleared it, fall back to the generic text for the code we were given.
    let useExtended = extended & 0xFF == code & 0xFF
    let message = useExtended ? String(cString: sqlite3_errmsg(db)) : String(cString: sqlite3_errstr(code))
    return SQLiteError(path: path, operation: operation, extendedCode: useExtended ? extended : code, message: message)
}

extension StorageError {
    /// The `StorageError` for an error thrown by code mixing SQLite calls and storage checks.
    static func from(_ error: any Error, path: String) -> StorageError {
        switch error {
        case let error as SQLiteError: return error.storageError
        case let error as StorageError: return error
        default: return .io("\(path): \(error)")
        }
    }
}
