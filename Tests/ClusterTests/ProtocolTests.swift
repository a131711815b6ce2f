import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ClusterTests {
    @Test("redis-cli against the leader: PING, SET/GET, SET NX/XX, DEL, EXISTS, MGET, INCR/INCRBY, INFO, QUIT")
    func redisCLICommands() async throws {
        _ = try Tools.redisCLI()
        try await withCluster(size: 3) { cluster, leader in
            // redis-cli prints replies raw when its output is not a terminal: a nil as an empty
            // line, an array one element per line, an error as its text.
            func expect(_ arguments: [String], _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let result = try await cluster.redisCLI(leader, arguments)
                #expect(result.status == 0, "redis-cli \(arguments): \(result)", sourceLocation: sourceLocation)
                #expect(result.output == expected, "redis-cli \(arguments): \(result)", sourceLocation: sourceLocation)
            }
            try await expect(["PING"], "PONG")
            try await expect(["PING", "hello there"], "hello there")
            try await expect(["SET", "greeting", "hello"], "OK")
            try await expect(["GET", "greeting"], "hello")
            try await expect(["GET", "missing"], "")
            try await expect(["SET", "greeting", "other", "NX"], "")
            try await expect(["GET", "greeting"], "hello")
            try await expect(["SET", "fresh", "1", "NX"], "OK")
            try await expect(["SET", "fresh", "2", "XX"], "OK")
            try await expect(["GET", "fresh"], "2")
            try await expect(["SETNX", "fresh", "3"], "0")
            try await expect(["SETNX", "newer", "Hello, World"], "1")
            try await expect(["STRLEN", "newer"], "12")
            try await expect(["STRLEN", "absent"], "0")
            try await expect(["GETRANGE", "newer", "0", "4"], "Hello")
            try await expect(["GETRANGE", "newer", "-5", "-1"], "World")
            try await expect(["GETRANGE", "newer", "7", "100"], "World")
            try await expect(["GETRANGE", "newer", "5", "2"], "")
            try await expect(["TYPE", "newer"], "string")
            try await expect(["TYPE", "absent"], "none")
            try await expect(["SET", "absent", "1", "XX"], "")
            try await expect(["EXISTS", "absent"], "0")
            try await expect(["EXISTS", "greeting", "fresh", "absent"], "2")
            try await expect(["MGET", "greeting", "absent", "fresh"], "hello\n\n2")
            try await expect(["DEL", "greeting", "absent"], "1")
            try await expect(["EXISTS", "greeting"], "0")
            try await expect(["GET", "greeting"], "")
            try await expect(["INCR", "counter"], "1")
            try await expect(["INCRBY", "counter", "41"], "42")
            try await expect(["INCRBY", "counter", "-2"], "40")
            try await expect(["GET", "counter"], "40")
            try await expect(["INCR", "fresh"], "3")
            try await expect(["set", "lower", "case"], "OK")
            try await expect(["gEt", "lower"], "case")
            try await expect(["SET", "spaced value", "a b\tc"], "OK")
            try await expect(["GET", "spaced value"], "a b\tc")

            let notInteger = try await cluster.redisCLI(leader, ["INCR", "lower"])
            #expect(notInteger.output.hasPrefix("ERR"), "\(notInteger)")
            let unknown = try await cluster.redisCLI(leader, ["NOSUCHCOMMAND", "x"])
            #expect(unknown.output.hasPrefix("ERR"), "\(unknown)")

            let info = try await cluster.redisCLI(leader, ["INFO"])
            let fields = parseInfo(info.stdout)
            #expect(fields["role"] == "leader" && fields["node_id"] == String(leader), "\(info)")
            #expect(fields["leader_client"] == cluster.node(leader).endpoint, "\(info)")
            #expect(fields["redis_version"] == "7.2.0" && fields["cluster_enabled"] == "0" && fields["loading"] == "0", "\(info)")
            // A section asked for is the only one answered; an unknown one is empty (as in Redis).
            let server = parseInfo(try await cluster.redisCLI(leader, ["INFO", "server"]).stdout)
            #expect(server["redis_version"] != nil && server["role"] == nil && server["arch_bits"] == "64", "\(server)")
            let kvdOnly = parseInfo(try await cluster.redisCLI(leader, ["INFO", "kvd"]).stdout)
            #expect(kvdOnly["role"] == "leader" && kvdOnly["redis_version"] == nil, "\(kvdOnly)")
            #expect(try await cluster.redisCLI(leader, ["INFO", "nosuchsection"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
            try await expect(["QUIT"], "OK")

            // A follower serves redis-cli too: the read goes through the leader's read index.
            let follower = cluster.ids.first { $0 != leader }!
            let throughFollower = try await cluster.redisCLI(follower, ["GET", "counter"])
            #expect(throughFollower.output == "40", "\(throughFollower)")
            try await expect(["PING"], "PONG")
        }
    }

    @Test("protocol edge cases on a raw socket: byte at a time, inline, pipelined, oversized bulk, garbage, unknown command")
    func protocolEdgeCases() async throws {
        // Small request limit, so an oversized bulk is cheap to send: 128 KiB per request, values
        // up to 64 KiB (a value between the two gets -ERR for that request only).
        let settings: KeyValuePairs<String, String> = [
            "heartbeat-ms": "25", "election-timeout-ms": "250", "value-bytes-max": "65536", "request-bytes-max": "131072",
        ]
        try await withCluster(size: 3, settings: settings) { cluster, leader in
            let port = cluster.node(leader).clientPort

            // A multibulk request, then an inline one, delivered one byte at a time.
            try await checking { check in
                let connection = try RawConnection(port: port)
                defer { connection.close() }
                connection.sendSlowly(multibulk(["SET", "slow", "one byte at a time"]))
                check.equal(try connection.readReply(), .simple("OK"))
                connection.sendSlowly(Array("GET slow\r\n".utf8))
                check.equal(try connection.readReply(), .bulk("one byte at a time"))
                connection.sendSlowly(multibulk(["MGET", "slow", "nothing"]))
                check.equal(try connection.readReply(), .array([.bulk("one byte at a time"), .bulk(nil)]))
            }

            // Inline commands, as typed into nc (LF or CRLF, Redis quoting, any case).
            try await checking { check in
                let connection = try RawConnection(port: port)
                defer { connection.close() }
                check.equal(try connection.roundTrip("PING\r\n"), .simple("PONG"))
                check.equal(try connection.roundTrip("set inline \"hello world\"\n"), .simple("OK"))
                check.equal(try connection.roundTrip("GET inline\r\n"), .bulk("hello world"))
                check.equal(try connection.roundTrip("exists inline nothing\n"), .integer(1))
                check.equal(try connection.roundTrip("QUIT\r\n"), .simple("OK"))
                check.that(connection.closesConnection(), "QUIT must close the connection")
            }

            // 300 pipelined requests in one write, multibulk and inline mixed: answered in order.
            try await checking { check in
                let connection = try RawConnection(port: port)
                defer { connection.close() }
                var batch: [UInt8] = []
                for index in 1...100 {
                    batch += multibulk(["INCR", "pipelined"])
                    batch += Array("GET pipelined\r\n".utf8)
                    batch += multibulk(["SET", "p\(index)", "v\(index)"])
                }
                connection.send(batch)
                for index in 1...100 {
                    check.equal(try connection.readReply(), .integer(Int64(index)))
                    check.equal(try connection.readReply(), .bulk(String(index)))
                    check.equal(try connection.readReply(), .simple("OK"))
                }
                check.equal(try connection.readAfter(multibulk(["MGET", "p1", "p100"])), .array([.bulk("v1"), .bulk("v100")]))
                // Pipelined writes to one key apply in order; reads and writes keep program order.
                var overwrites: [UInt8] = []
                for index in 1...100 { overwrites += multibulk(["SET", "last", "\(index)"]) }
                overwrites += multibulk(["GET", "last"]) + multibulk(["SET", "last", "final"]) + multibulk(["GET", "last"])
                connection.send(overwrites)
                for _ in 1...100 { check.equal(try connection.readReply(), .simple("OK")) }
                check.equal(try connection.readReply(), .bulk("100"))
                check.equal(try connection.readReply(), .simple("OK"))
                check.equal(try connection.readReply(), .bulk("final"))
            }

            // An oversized bulk: -ERR Protocol error, the connection closes, others keep working.
            try await checking { check in
                let bystander = try RawConnection(port: port)
                defer { bystander.close() }
                check.equal(try bystander.roundTrip("PING\r\n"), .simple("PONG"))
                let abuser = try RawConnection(port: port)
                defer { abuser.close() }
                abuser.send(Array("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$200000\r\n".utf8) + [UInt8](repeating: 65, count: 4096))
                let reply = try abuser.readReply()
                check.that(reply.errorText?.hasPrefix("ERR Protocol error") == true, "oversized bulk: \(reply)")
                check.that(abuser.closesConnection(), "the connection must close after a protocol error")
                check.equal(try bystander.roundTrip("PING\r\n"), .simple("PONG"))
                check.equal(try bystander.readAfter(multibulk(["GET", "big"])), .bulk(nil))

                // A value over value-bytes-max but within request-bytes-max: -ERR for that request only.
                let large = String(repeating: "v", count: 100_000)
                let tooLarge = try bystander.readAfter(multibulk(["SET", "big", large]))
                check.that(tooLarge.errorText?.hasPrefix("ERR") == true, "value over the limit: \(tooLarge)")
                check.equal(try bystander.roundTrip("PING\r\n"), .simple("PONG"))
                let fresh = try RawConnection(port: port)
                defer { fresh.close() }
                check.equal(try fresh.roundTrip("PING\r\n"), .simple("PONG"))
            }

            // Garbage: malformed framing is a protocol error that closes the connection; other
            // clients and the server are not affected.
            try await checking { check in
                for garbage in ["*abc\r\n", "*1\r\nX\r\n", "*1\r\n$-7\r\n", "*1\r\n$3\r\nGETxx", "SET a \"unbalanced\r\n"] {
                    let connection = try RawConnection(port: port)
                    defer { connection.close() }
                    let reply = try connection.readAfter(Array(garbage.utf8))
                    check.that(reply.errorText?.hasPrefix("ERR Protocol error") == true, "\(garbage.debugDescription): \(reply)")
                    check.that(connection.closesConnection(), "\(garbage.debugDescription) must close the connection")
                }
                // Random binary bytes: whatever the server answers, it stays up.
                var generator = SplitMix64(seed: 20_241_123)
                for _ in 0..<3 {
                    let connection = try RawConnection(port: port, timeout: .seconds(1))
                    let bytes = (0..<4096).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                    connection.send(bytes)
                    _ = connection.closesConnection()
                    connection.close()
                }
                let after = try RawConnection(port: port)
                defer { after.close() }
                check.equal(try after.roundTrip("PING\r\n"), .simple("PONG"))
            }

            // An unknown command (and a wrong number of arguments) gets -ERR; the connection stays usable.
            try await checking { check in
                let connection = try RawConnection(port: port)
                defer { connection.close() }
                let unknown = try connection.roundTrip("FROBNICATE a b\r\n")
                check.that(unknown.errorText?.hasPrefix("ERR") == true, "\(unknown)")
                check.equal(try connection.roundTrip("PING\r\n"), .simple("PONG"))
                let unknownMultibulk = try connection.readAfter(multibulk(["NOPE"]))
                check.that(unknownMultibulk.errorText?.hasPrefix("ERR") == true, "\(unknownMultibulk)")
                let arity = try connection.readAfter(multibulk(["GET"]))
                check.that(arity.errorText?.hasPrefix("ERR") == true, "\(arity)")
                check.equal(try connection.readAfter(multibulk(["GET", "slow"])), .bulk("one byte at a time"))
            }

            #expect(cluster.running == cluster.ids, "every node still runs")
            try await cluster.waitForLeader()
        }
    }
}

/// A small seeded generator for reproducible garbage.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
