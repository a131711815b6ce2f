/// The state machine's tables. Keys, leases, locks, fences and sessions live in SQLite beside the
/// Raft log; `kv_meta` holds the applied index, so that state and applied index commit together.
enum KVSchema {
    /// 2 added keys' deadlines (`kv_keys.expires_at`) and the key count (`kv_meta.key_count`);
    /// 3 added the members' addresses (`kv_members`). An older database is upgraded in place
    /// when it is opened (`upgradeStatements`, one step per version).
    static let version: Int64 = 3

    static let statements = [
        """
        CREATE TABLE IF NOT EXISTS kv_meta(
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE IF NOT EXISTS kv_keys(
            key BLOB PRIMARY KEY,
            value BLOB NOT NULL,
            create_index INTEGER NOT NULL,
            mod_index INTEGER NOT NULL,
            lease INTEGER,
            expires_at INTEGER
        ) WITHOUT ROWID
        """,
        "CREATE INDEX IF NOT EXISTS kv_keys_by_lease ON kv_keys(lease) WHERE lease IS NOT NULL",
        """
        CREATE TABLE IF NOT EXISTS kv_leases(
            id INTEGER PRIMARY KEY,
            ttl_ms INTEGER NOT NULL,
            remaining_ms INTEGER NOT NULL,
            epoch INTEGER NOT NULL
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS kv_locks(
            name BLOB PRIMARY KEY,
            lease INTEGER NOT NULL,
            token INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
        "CREATE INDEX IF NOT EXISTS kv_locks_by_lease ON kv_locks(lease)",
        """
        CREATE TABLE IF NOT EXISTS kv_lock_waiters(
            name BLOB NOT NULL,
            seq INTEGER NOT NULL,
            lease INTEGER NOT NULL,
            PRIMARY KEY(name, seq)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX IF NOT EXISTS kv_lock_waiters_by_lease ON kv_lock_waiters(lease)",
        """
        CREATE TABLE IF NOT EXISTS kv_fences(
            name BLOB PRIMARY KEY,
            token INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE IF NOT EXISTS kv_sessions(
            client INTEGER PRIMARY KEY,
            last_seq INTEGER NOT NULL,
            last_reply BLOB,
            last_active_ms INTEGER NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS kv_sessions_by_activity ON kv_sessions(last_active_ms, client)",
        """
        CREATE TABLE IF NOT EXISTS kv_members(
            id INTEGER PRIMARY KEY,
            peer TEXT NOT NULL,
            client TEXT NOT NULL,
            metrics TEXT,
            cluster TEXT NOT NULL
        )
        """,
        installedSnapshotTable,
    ]

    /// Run after `statements` and any upgrade: indexes over columns an older version lacks.
    /// Only keys with a deadline are in the deadline index, so keys without one cost it nothing.
    static let indexStatements = [
        "CREATE INDEX IF NOT EXISTS kv_keys_by_deadline ON kv_keys(expires_at, key) WHERE expires_at IS NOT NULL"
    ]

    /// Upgrades a database of the version it is keyed by to the next one (each step in one
    /// transaction with its version change). `kv_members` is created by `statements`, so the
    /// step to 3 only records the version.
    static let upgradeStatements: [Int64: [String]] = [
        1: [
            "ALTER TABLE kv_keys ADD COLUMN expires_at INTEGER",
            "INSERT OR REPLACE INTO kv_meta(name, value) VALUES('key_count', (SELECT count(*) FROM kv_keys))",
            "UPDATE kv_meta SET value = 2 WHERE name = 'schema_version'",
        ],
        2: ["UPDATE kv_meta SET value = 3 WHERE name = 'schema_version'"],
    ]

    /// The snapshot this state database was installed from, if it was (one row, written by the
    /// follower that received it). Not replicated: a leader's stream never carries it.
    static let installedSnapshotTable = """
        CREATE TABLE IF NOT EXISTS kv_installed_snapshot(
            id INTEGER PRIMARY KEY CHECK (id = 0),
            last_index INTEGER NOT NULL,
            last_term INTEGER NOT NULL,
            membership BLOB NOT NULL
        )
        """

    /// Tables a snapshot copies, in restore order, with their columns.
    static let snapshotTables: [(name: String, columns: [String])] = [
        ("kv_meta", ["name", "value"]),
        ("kv_keys", ["key", "value", "create_index", "mod_index", "lease", "expires_at"]),
        ("kv_leases", ["id", "ttl_ms", "remaining_ms", "epoch"]),
        ("kv_locks", ["name", "lease", "token"]),
        ("kv_lock_waiters", ["name", "seq", "lease"]),
        ("kv_fences", ["name", "token"]),
        ("kv_sessions", ["client", "last_seq", "last_reply", "last_active_ms"]),
        ("kv_members", ["id", "peer", "client", "metrics", "cluster"]),
    ]
}
