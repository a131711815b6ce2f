import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Any node serves every command (docs/PROTOCOL.md, "Followers"): plain RESP clients pointed at a
/// follower write through it (forwarded to the leader) and read through it (at the leader's
/// read index, so a read sees every write acknowledged before it started, by any node).
extension ClusterTests {
    /// A reply that says nothing happened yet (an election, a leader change): ask again. Only
    /// definite refusals are retried, so a non-idempotent command never applies twice.
    static func definitelyNotDone(_ reply: Reply) -> Bool {
        guard case .error(let line) = reply else { return false }
        return line.hasPrefix("NOTLEADER")
    }

    /// Sends `arguments` until the answer is not a definite refusal (bounded).
    static func answered(_ connection: RawConnection, _ arguments: [String]) throws -> Reply {
        var reply = try connection.readAfter(multibulk(arguments))
        var attempts = 1
        while definitelyNotDone(reply), attempts < 100 {
            usleep(100_000)
            attempts += 1
            reply = try connection.readAfter(multibulk(arguments))
        }
        return reply
    }

    @Test("a follower serves SET, INCR and GET, and a read on it sees a write another node acknowledged just before")
    func followerServesEveryCommand() async throws {
        // Slower than the default test timings, so that a busy machine rarely changes leaders;
        // a change costs retries (of definite refusals), never a wrong answer.
        let settings: KeyValuePairs<String, String> = ["heartbeat-ms": "50", "election-timeout-ms": "1000"]
        try await withCluster(size: 3, settings: settings) { cluster, leader in
            let followers = cluster.ids.filter { $0 != leader }
            let (writerPort, readerPort, leaderPort) =
                (cluster.node(followers[0]).clientPort, cluster.node(followers[1]).clientPort, cluster.node(leader).clientPort)
            try await checking { check in
                let writer = try RawConnection(port: writerPort)
                let reader = try RawConnection(port: readerPort)
                let onLeader = try RawConnection(port: leaderPort)
                defer { [writer, reader, onLeader].forEach { $0.close() } }

                check.equal(try Self.answered(writer, ["SET", "fk", "v0"]), .simple("OK"))
                check.equal(try Self.answered(writer, ["INCR", "fn"]), .integer(1))
                check.equal(try Self.answered(reader, ["INCRBY", "fn", "41"]), .integer(42))
                check.equal(try Self.answered(writer, ["GET", "fk"]), .bulk("v0"))
                check.equal(try Self.answered(reader, ["GET", "fn"]), .bulk("42"))

                // Each write is acknowledged by one node (the other follower or the leader) before
                // the read starts on this follower: the read must see it, never an older value.
                for round in 1...30 {
                    let through = round % 2 == 0 ? onLeader : writer
                    check.equal(try Self.answered(through, ["SET", "lk", "r\(round)"]), .simple("OK"), "round \(round)")
                    check.equal(try Self.answered(reader, ["GET", "lk"]), .bulk("r\(round)"), "stale read in round \(round)")
                }
            }
            // INFO says the followers forward, and counts what they forwarded.
            let infos = await cluster.infos(followers)
            for id in followers {
                let info = try #require(infos[id], "node \(id) did not answer INFO")
                #expect(info["forwarding"] == "1", "node \(id): \(info)")
                #expect(Int(info["forwarded_writes"] ?? "") ?? 0 > 0, "node \(id): \(info)")
                #expect(Int(info["forwarded_reads"] ?? "") ?? 0 > 0, "node \(id): \(info)")
            }
        }
    }
}
