#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
import KVDaemon

/// Fuzzes the configuration file parser `ClusterConfig.parse` (even selector byte) and the users
/// file parser `UserDirectory.parse` (odd selector byte) with the stream as UTF-8 text.

/// Seeds for Fuzz/corpus, made with the real encoders (scripts/fuzz.sh --write-seeds).
func seeds() throws -> [(name: String, bytes: [UInt8])] {
    func file(_ path: String) -> [UInt8] {
        guard let handle = fopen(path, "rb") else { fatalError("cannot open \(path) (run from the repository root)") }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        while case let byte = fgetc(handle), byte != EOF { bytes.append(UInt8(byte)) }
        return bytes
    }
    let hash = "pbkdf2-sha256$210000$" + String(repeating: "0f", count: 16) + "$" + String(repeating: "a5", count: 32)
    let users = """
        # users of the demo cluster
        user admin  \(hash)  +all ~*
        user app    \(hash)  +read +write +locks ~app:*
        user reader \(hash)  +read ~*\r
        """
    let settings = """
        cluster-id fuzz
        heartbeat-ms 50
        election-timeout-ms 500
        requirepass \(hash)
        users-file users.conf
        node 1 peer=127.0.0.1:7101 client=127.0.0.1:7001 metrics=127.0.0.1:7201
        node 2 peer=[::1]:7102 client=[::1]:7002
        """
    return [
        ("cluster-conf-example", [0] + file("cluster.conf.example")),
        ("cluster5-conf-example", [2] + file("cluster5.conf.example")),
        ("settings", [4] + Array(settings.utf8)),
        ("users", [1] + Array(users.utf8)),
    ]
}

/// One input (libFuzzer's `LLVMFuzzerTestOneInput`).
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let text = String(decoding: input.stream, as: UTF8.self)
    if input.selector & 1 == 0 {
        _ = try? ClusterConfig.parse(text, file: "fuzz.conf")
    } else {
        _ = try? UserDirectory.parse(text, file: "users.conf")
    }
    return 0
}
