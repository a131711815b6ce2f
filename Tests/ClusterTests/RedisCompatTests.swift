import Foundation
import Testing

/// Real processes: keys with a time to live expire on every node by the leader's replicated
/// decision, a failover neither shortens nor extends a deadline, and a MULTI/EXEC transaction
/// with WATCH behaves as Redis's on a plain RESP connection.
@Suite(.serialized) struct RedisCompatTests {
    /// A node's local view of a key (`READONLY` reads its own applied state, no leader involved).
    func localGet(_ cluster: Cluster, _ id: Int, _ key: String) async throws -> Reply {
        let port = cluster.node(id).clientPort
        return try await offload {
            let connection = try RawConnection(port: port)
            defer { connection.close() }
            _ = try connection.roundTrip("READONLY\r\n")
            return try connection.roundTrip("GET \(key)\r\n")
        }
    }

    @Test("a key with a time to live vanishes from every node, and a failover keeps its deadline")
    func expiryAcrossNodesAndFailover() async throws {
        try await withCluster(size: 3) { cluster, leader in
            let port = cluster.node(leader).clientPort
            let replies = try await offload {
                let connection = try RawConnection(port: port)
                defer { connection.close() }
                return [
                    try connection.roundTrip("SET short v PX 1500\r\n"), try connection.roundTrip("SET long v EX 60\r\n"),
                    try connection.roundTrip("SET plain v\r\n"), try connection.roundTrip("TTL long\r\n"),
                    try connection.roundTrip("TTL plain\r\n"), try connection.roundTrip("TTL missing\r\n"),
                ]
            }
            #expect(replies == [.simple("OK"), .simple("OK"), .simple("OK"), .integer(60), .integer(-1), .integer(-2)])
            // Every node, reading only its own state, sees the short key go (the leader's expiry
            // entry replicates), and keeps the others.
            for id in 1...3 {
                try await eventually("node \(id) to drop the expired key", timeout: .seconds(20)) {
                    try await localGet(cluster, id, "short") == .bulk(nil)
                }
                #expect(try await localGet(cluster, id, "long") == .bulk("v"))
                #expect(try await localGet(cluster, id, "plain") == .bulk("v"))
            }
            // A new leader neither restarts nor shortens the 60 s deadline.
            try await cluster.kill9(leader)
            let survivors = (1...3).filter { $0 != leader }
            let next = try await cluster.waitForLeader(among: survivors)
            let ttl = try await cluster.redisCLI(next, ["TTL", "long"])
            let seconds = Int(ttl.output) ?? -100
            #expect(seconds > 20 && seconds < 60, "TTL after failover: \(ttl)")
        }
    }

    @Test("MULTI/EXEC applies as one, WATCH aborts EXEC after a change, queueing errors abort with EXECABORT")
    func transactions() async throws {
        try await withCluster(size: 3) { cluster, leader in
            let port = cluster.node(leader).clientPort
            try await checking { check in
                let connection = try RawConnection(port: port)
                defer { connection.close() }
                let other = try RawConnection(port: port)
                defer { other.close() }
                check.equal(try connection.roundTrip("MULTI\r\n"), .simple("OK"))
                check.equal(try connection.roundTrip("SET counter 10\r\n"), .simple("QUEUED"))
                check.equal(try connection.roundTrip("INCRBY counter 5\r\n"), .simple("QUEUED"))
                check.equal(try connection.roundTrip("GET counter\r\n"), .simple("QUEUED"))
                check.equal(try connection.roundTrip("EXEC\r\n"), .array([.simple("OK"), .integer(15), .bulk("15")]))

                check.equal(try connection.roundTrip("WATCH counter\r\n"), .simple("OK"))
                check.equal(try other.roundTrip("INCR counter\r\n"), .integer(16))
                check.equal(try connection.roundTrip("MULTI\r\n"), .simple("OK"))
                check.equal(try connection.roundTrip("SET counter 0\r\n"), .simple("QUEUED"))
                check.equal(try connection.roundTrip("EXEC\r\n"), .array(nil))
                check.equal(try other.roundTrip("GET counter\r\n"), .bulk("16"))

                // Pipelined WATCH, MULTI, writes, EXEC in one send: EXEC waits for WATCH's reply.
                connection.send(multibulk(["WATCH", "counter"]) + multibulk(["MULTI"]) + multibulk(["INCR", "counter"]) + multibulk(["EXEC"]))
                check.equal(try connection.readReply(), .simple("OK"))
                check.equal(try connection.readReply(), .simple("OK"))
                check.equal(try connection.readReply(), .simple("QUEUED"))
                check.equal(try connection.readReply(), .array([.integer(17)]))

                check.equal(try connection.roundTrip("MULTI\r\n"), .simple("OK"))
                check.equal(try connection.roundTrip("SET counter 0\r\n"), .simple("QUEUED"))
                check.that(try connection.roundTrip("LPUSH list x\r\n").errorText != nil)
                check.equal(try connection.roundTrip("EXEC\r\n"), .error("EXECABORT Transaction discarded because of previous errors."))
                check.equal(try other.roundTrip("GET counter\r\n"), .bulk("17"))
                check.equal(try connection.roundTrip("EXEC\r\n"), .error("ERR EXEC without MULTI"))
            }
        }
    }
}
