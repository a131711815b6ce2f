import KVStore
import NIOCore
import Testing

@testable import KVDaemon

/// `MULTI`/`EXEC`/`WATCH` on one connection: commands are queued by the connection and sent to
/// the Raft loop as one transaction write at `EXEC`, with the watched keys' versions.
@Suite struct ClientTransactionTests {
    func b(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func execSendsTheQueuedCommandsAsOneWrite() throws {
        let connection = try ClientConnectionTests.Connection()
        try connection.send(["MULTI", "SET a 1", "INCR a", "GET a", "PING", "EXEC"])
        let posted = connection.posted()
        #expect(posted.count == 1)
        guard case .write(.transaction(let operations, let watches), nil, .transaction(let styles)) = posted.first?.0 else {
            Issue.record("EXEC posted \(String(describing: posted.first?.0))")
            return
        }
        #expect(operations == [
            .put(key: b("a"), value: b("1"), condition: .always, lease: nil, fence: nil), .increment(key: b("a"), delta: 1, fence: nil),
            .read(.get(b("a"))), .read(.echo(nil)),
        ])
        #expect(watches.isEmpty)
        #expect(styles.count == 4)
        posted[0].1.send(Reply.from(.transaction([.ok, .integer(2), .value(b("2")), .status("PONG")]), style: .transaction(styles)))
        #expect(try connection.written() == "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*4\r\n+OK\r\n:2\r\n$1\r\n2\r\n+PONG\r\n")
    }

    @Test func aQueueingErrorAbortsExec() throws {
        let connection = try ClientConnectionTests.Connection()
        try connection.send(["MULTI", "SET a 1", "LPUSH l x", "LOCK n LEASE 1", "EXEC", "EXEC", "DISCARD"])
        #expect(connection.posted().isEmpty)
        let replies = try connection.written().components(separatedBy: "\r\n")
        #expect(replies[0...1] == ["+OK", "+QUEUED"])
        #expect(replies[2].hasPrefix("-ERR unknown command 'LPUSH'"))
        #expect(replies[3].hasPrefix("-ERR this command cannot run inside MULTI"))
        #expect(replies[4...6] == ["-EXECABORT Transaction discarded because of previous errors.", "-ERR EXEC without MULTI", "-ERR DISCARD without MULTI"])
    }

    @Test func watchedVersionsTravelWithExecAndAreForgottenAfter() throws {
        let connection = try ClientConnectionTests.Connection()
        // Pipelined: EXEC waits until WATCH's versions are back.
        try connection.send(["WATCH a b", "MULTI", "SET a 2", "EXEC"])
        let watch = connection.posted()
        #expect(watch.map(\.0) == [.watch([b("a"), b("b")])])
        watch[0].1.send(.array([.integer(7), .integer(0)]))
        #expect(try connection.written() == "+OK\r\n+OK\r\n+QUEUED\r\n")
        let exec = connection.posted()
        guard case .write(.transaction(_, let watches), nil, _) = exec.first?.0 else {
            Issue.record("EXEC posted \(String(describing: exec.first?.0))")
            return
        }
        #expect(watches == [WatchedKey(key: b("a"), modIndex: 7), WatchedKey(key: b("b"), modIndex: 0)])
        exec[0].1.send(.array(nil))
        #expect(try connection.written() == "*-1\r\n")
        // The next transaction watches nothing.
        try connection.send(["MULTI", "DEL a", "EXEC"])
        guard case .write(.transaction(_, let none), nil, _) = connection.posted().first?.0 else {
            Issue.record("second EXEC not posted")
            return
        }
        #expect(none.isEmpty)
    }

    @Test func nestingWatchInsideMultiAndResetFollowRedis() throws {
        let connection = try ClientConnectionTests.Connection()
        try connection.send(["MULTI", "MULTI", "WATCH a", "DISCARD", "HELLO 3", "RESET", "GET x"])
        let text = try connection.written()
        #expect(text.hasPrefix("+OK\r\n-ERR MULTI calls can not be nested\r\n-ERR WATCH inside MULTI is not allowed\r\n+OK\r\n%7\r\n"))
        #expect(text.hasSuffix("+RESET\r\n"))
        let get = connection.posted()
        get.first?.1.send(.null)
        #expect(try connection.written() == "$-1\r\n", "RESET went back to RESP2")
    }

    @Test func infoIsVerbatimTextInRESP3AndBulkInRESP2() {
        var resp3 = ByteBuffer()
        resp3.writeReply(.verbatim("# kvd\r\nrole:leader\r\n"), .resp3)
        #expect(String(buffer: resp3) == "=24\r\ntxt:# kvd\r\nrole:leader\r\n\r\n")
        var resp2 = ByteBuffer()
        resp2.writeReply(.verbatim("role:leader"), .resp2)
        #expect(String(buffer: resp2) == "$11\r\nrole:leader\r\n")
    }
}
