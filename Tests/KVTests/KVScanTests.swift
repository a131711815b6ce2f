import KVStore
import RaftCore
import Testing

/// `SCAN`'s walk over the keys: bounded work per call, a cursor that is a key (so any node
/// continues it), every key present throughout returned once; and the version 1 schema upgrade.
@Suite struct KVScanTests {
    @Test func aScanReturnsEveryKeyOnceInBoundedPagesDespiteWritesBetweenPages() throws {
        let kv = try KVFixture()
        for index in 0..<50 { _ = try kv.put("key\(index)", "v") }
        var seen: [[UInt8]] = []
        var cursor: [UInt8]?
        var pages = 0
        repeat {
            let page = try kv.machine.scanKeys(prefix: [], after: cursor, limit: 7)
            #expect(page.keys.count <= 7)
            seen += page.keys
            cursor = page.last
            pages += 1
            // Deleting keys already returned and adding new ones does not disturb the walk.
            _ = try kv.apply(.delete(keys: page.keys.prefix(1).map { $0 }, fence: nil))
            _ = try kv.put("zzz\(pages)", "new")
        } while cursor != nil && pages < 100
        let original = Set((0..<50).map { bytes("key\($0)") })
        #expect(original.isSubset(of: Set(seen)))
        #expect(seen.count == Set(seen).count)
    }

    @Test func aPrefixScanStartsAtThePrefixWhateverTheCursor() throws {
        let kv = try KVFixture()
        for key in ["a1", "b1", "b2", "b3", "c1"] { _ = try kv.put(key, "v") }
        let first = try kv.machine.scanKeys(prefix: bytes("b"), after: bytes("a1"), limit: 2)
        #expect(first.keys == [bytes("b1"), bytes("b2")])
        let second = try kv.machine.scanKeys(prefix: bytes("b"), after: first.last, limit: 2)
        #expect(second.keys == [bytes("b3")])
        #expect(second.last == nil)
    }

    @Test func expiredKeysAreSkippedButStillMoveTheCursor() throws {
        let kv = try KVFixture()
        _ = try kv.apply(.set(SetRequest(key: bytes("a"), value: bytes("v"), expiry: .after(millis: 5))))
        _ = try kv.put("b", "v")
        kv.nowMillis += 5
        _ = try kv.put("c", "v")
        let page = try kv.machine.scanKeys(prefix: [], after: nil, limit: 2)
        #expect(page.keys == [bytes("b")])
        #expect(page.last == bytes("b"))
    }

    @Test func aVersionOneDatabaseIsUpgradedInPlace() throws {
        let database = try SQLiteConnection.inMemory()
        try database.execute("CREATE TABLE kv_meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID")
        try database.execute(
            "CREATE TABLE kv_keys(key BLOB PRIMARY KEY, value BLOB NOT NULL, create_index INTEGER NOT NULL, mod_index INTEGER NOT NULL, lease INTEGER) WITHOUT ROWID"
        )
        try database.execute("INSERT INTO kv_meta(name, value) VALUES('schema_version', 1), ('applied_index', 2)")
        try database.execute("INSERT INTO kv_keys VALUES(x'61', x'31', 1, 1, NULL), (x'62', x'32', 2, 2, NULL)")
        let machine = try KVStateMachine(database: database)
        #expect(machine.keyCount == 2)
        #expect(try machine.get(bytes("a"))?.expiresAt == nil)
        #expect(try database.scalarInt64("SELECT value FROM kv_meta WHERE name = 'schema_version'") == 3)
        let reopened = try KVStateMachine(database: database)
        #expect(reopened.keyCount == 2)
    }
}
