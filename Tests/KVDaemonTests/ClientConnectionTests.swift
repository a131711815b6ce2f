import KVProtocol
import NIOCore
import NIOEmbedded
import Testing
import Foundation

@testable import KVDaemon

/// One client connection on an embedded channel, with the Raft loop played by the test: it
/// drains the mailbox and answers the commands in whatever order it likes.
@Suite struct ClientConnectionTests {
    struct Connection {
        let channel = EmbeddedChannel()
        let mailbox = LoopMailbox()
        let connections = ClientChannels()
        let courier = ReplyCourier()

        init(pipelineRequestsMax: Int = 1024, connectionsMax: Int = 1024, settings: [ConfigParameter] = []) throws {
            let shared = ClientConnection.Shared(
                loop: RaftLoopHandle(mailbox: mailbox, courier: courier), metrics: DaemonMetrics(),
                pipelineRequestsMax: pipelineRequestsMax, connectionsMax: connectionsMax, connections: connections,
                courier: courier, settings: settings)
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPRequestDecoder(limits: RESPLimits())))
            try channel.pipeline.syncOperations.addHandler(ClientConnection(shared: shared))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        }

        /// Sends inline requests as one read.
        func send(_ lines: [String]) throws {
            try channel.writeInbound(ByteBuffer(string: lines.map { $0 + "\r\n" }.joined()))
        }

        /// The commands the connection posted to the Raft loop, with their responders.
        func posted() -> [(ClientCommand, Responder)] {
            mailbox.drain().compactMap { input in
                if case .command(let command, _, let responder) = input { return (command, responder) }
                return nil
            }
        }

        /// Everything written to the client so far, as text, once the loop's iteration ended
        /// (the courier delivered its replies).
        func written() throws -> String {
            courier.deliver()
            channel.embeddedEventLoop.run()
            var text = ""
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
            return text
        }
    }

    /// A request begun and not finished within client-partial-request-timeout-ms is answered with
    /// an error and the connection closed; one finished in time, or an idle connection, is not.
    @Test func aPartialRequestTimesOut() throws {
        let connection = try Connection()
        try connection.channel.writeInbound(ByteBuffer(string: "*2\r\n$3\r\nGET\r\n$1\r\n"))
        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(29))
        #expect(connection.channel.isActive)
        try connection.channel.writeInbound(ByteBuffer(string: "k\r\n"))
        let posted = connection.posted()
        #expect(posted.count == 1, "finished in time: it runs")
        posted.first?.1.send(.bulk(Array("v".utf8)))
        #expect(try connection.written() == "$1\r\nv\r\n")
        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(connection.channel.isActive, "between requests a connection may stay idle")
        try connection.channel.writeInbound(ByteBuffer(string: "*1\r\n$4\r\nPI"))
        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(31))
        let text = try connection.written()
        #expect(text.hasSuffix("-ERR request not completed within 30000 ms (client-partial-request-timeout-ms)\r\n"), "\(text)")
        #expect(!connection.channel.isActive)
    }

    /// Replies from the loop may come in any order; the client gets them in request order, and
    /// nothing is written while the first is unanswered.
    @Test func repliesGoOutInRequestOrder() throws {
        let connection = try Connection()
        try connection.send(["SET a 1", "SET b 2", "PING"])
        let posted = connection.posted()
        #expect(posted.map(\.0).count == 2, "PING is answered by the connection itself")
        posted[1].1.send(.integer(2))
        #expect(try connection.written() == "")
        posted[0].1.send(.integer(1))
        #expect(try connection.written() == ":1\r\n:2\r\n+PONG\r\n")
    }

    /// A read after a write waits until the write is answered (read-your-writes within a
    /// pipeline); reads after reads go together.
    @Test func aReadBehindAWriteWaitsForIt() throws {
        let connection = try Connection()
        try connection.send(["SET k v", "GET k", "GET k"])
        let first = connection.posted()
        #expect(first.count == 1 && !first[0].0.isRead)
        #expect(connection.posted().isEmpty, "the reads wait behind the unanswered write")
        first[0].1.send(.ok)
        #expect(try connection.written() == "+OK\r\n")
        let reads = connection.posted()
        #expect(reads.count == 2 && reads.allSatisfy { $0.0.isRead })
        for (_, responder) in reads { responder.send(.bulk(Array("v".utf8))) }
        #expect(try connection.written() == "$1\r\nv\r\n$1\r\nv\r\n")
    }

    /// With the pipeline full the connection stops asking for more bytes, and asks again once
    /// replies are written.
    @Test func aFullPipelineStopsReading() throws {
        let connection = try Connection(pipelineRequestsMax: 2)
        try connection.channel.pipeline.syncOperations.addHandler(ReadCounter(), position: .first)
        try connection.send(["SET a 1", "SET b 2"])
        let counter = try connection.channel.pipeline.syncOperations.handler(type: ReadCounter.self)
        let before = counter.reads
        connection.channel.read()
        #expect(counter.reads == before, "held back: two requests are unanswered")
        for (_, responder) in connection.posted() { responder.send(.ok) }
        #expect(try connection.written() == "+OK\r\n+OK\r\n")
        #expect(counter.reads == before + 1, "the held read goes out once there is room")
    }

    /// One connection more than the limit is told so and closed.
    @Test func connectionsBeyondTheLimitAreRefused() throws {
        let connection = try Connection(connectionsMax: 0)
        #expect(try connection.written() == "-ERR max number of clients reached\r\n")
        #expect(!connection.channel.isActive)
    }

    /// A protocol error is answered after everything before it, then the connection closes.
    @Test func aProtocolErrorClosesAfterEarlierReplies() throws {
        let connection = try Connection()
        try connection.channel.writeInbound(ByteBuffer(string: "SET a 1\r\n*1\r\n$x\r\n"))
        let posted = connection.posted()
        #expect(posted.count == 1)
        #expect(connection.channel.isActive, "waits for the earlier reply")
        posted[0].1.send(.ok)
        let text = try connection.written()
        #expect(text.hasPrefix("+OK\r\n-ERR "))
        #expect(!connection.channel.isActive)
    }
}

/// The handshake Redis clients send first, and RESP3 after `HELLO 3`.
@Suite struct ClientHandshakeTests {
    typealias Connection = ClientConnectionTests.Connection

    /// `HELLO 3` answers with a RESP3 map and switches the connection: a nil is `_` from then on,
    /// while a reply to a request sent before it keeps RESP2.
    @Test func hello3SwitchesToRESP3() throws {
        let connection = try Connection()
        try connection.send(["GET before", "HELLO 3", "GET after"])
        let posted = connection.posted()
        #expect(posted.count == 2)
        for (_, responder) in posted { responder.send(.null) }
        let text = try connection.written()
        #expect(text.hasPrefix("$-1\r\n%7\r\n$6\r\nserver\r\n$3\r\nkvd\r\n$7\r\nversion\r\n"))
        #expect(text.contains("$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:"))
        #expect(text.contains("$4\r\nrole\r\n$7\r\nreplica\r\n$7\r\nmodules\r\n*0\r\n"))
        #expect(text.hasSuffix("*0\r\n_\r\n"), "the GET after HELLO 3 gets the RESP3 null")
    }

    /// Other versions are refused with `-NOPROTO` and the connection keeps RESP2; `HELLO` alone
    /// answers in the current protocol (a flat array in RESP2).
    @Test func otherVersionsAreRefused() throws {
        let connection = try Connection()
        try connection.send(["HELLO 4", "HELLO", "HELLO x"])
        let text = try connection.written()
        #expect(text.hasPrefix("-NOPROTO unsupported protocol version\r\n*14\r\n$6\r\nserver\r\n"))
        #expect(text.contains("$5\r\nproto\r\n:2\r\n"))
        #expect(text.hasSuffix("-ERR Protocol version is not an integer or out of range\r\n"))
    }

    /// `HELLO 3 AUTH u p SETNAME n`, `CLIENT SETNAME/GETNAME/ID/SETINFO`, `SELECT`.
    @Test func clientBookkeeping() throws {
        let connection = try Connection()
        try connection.send([
            "HELLO 2 AUTH default secret SETNAME first", "CLIENT GETNAME", "CLIENT SETNAME second", "CLIENT GETNAME",
            "CLIENT SETINFO LIB-NAME redis-py", "CLIENT ID", "SELECT 0", "SELECT 1", "CLIENT SETNAME a\u{7F}b",
            "CLIENT KILL x",
        ])
        let text = try connection.written()
        let lines = text.components(separatedBy: "\r\n")
        let afterHello = Array(lines.drop { $0 != "modules" }.dropFirst(2))
        #expect(Array(afterHello.prefix(8)) == ["$5", "first", "+OK", "$6", "second", "+OK", ":1", "+OK"])
        #expect(afterHello[8] == "-ERR DB index is out of range")
        #expect(afterHello[9].hasPrefix("-ERR Client names cannot contain spaces"))
        #expect(afterHello[10].hasPrefix("-ERR unknown subcommand 'KILL'"))
    }
}

/// `CONFIG GET` and `COMMAND COUNT`, what redis-benchmark and redis-cli ask first.
@Suite struct ClientIntrospectionTests {
    @Test func configGetMatchesGlobs() throws {
        let connection = try ClientConnectionTests.Connection(connectionsMax: 7)
        try connection.send(["CONFIG GET save", "CONFIG GET APPEND*", "CONFIG GET max? nothing", "CONFIG GET *"])
        let text = try connection.written()
        let replies = text.components(separatedBy: "\r\n")
        #expect(Array(replies.prefix(5)) == ["*2", "$4", "save", "$0", ""])
        #expect(text.contains("*4\r\n$11\r\nappendfsync\r\n$6\r\nalways\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n"))
        #expect(text.contains("*0\r\n"), "no parameter matches max? or nothing")
        #expect(text.hasSuffix("$7\r\ntimeout\r\n$1\r\n0\r\n"))
        #expect(text.contains("*12\r\n"), "* lists all six")
    }

    @Test func configGetShowsTheNodesSettingsToo() throws {
        let connection = try ClientConnectionTests.Connection(settings: ClusterSettings().parameters)
        try connection.send(["CONFIG GET heartbeat-ms election*"])
        #expect(try connection.written() == "*4\r\n$12\r\nheartbeat-ms\r\n$2\r\n50\r\n$19\r\nelection-timeout-ms\r\n$3\r\n500\r\n")
    }

    @Test func commandCountIsAnInteger() throws {
        let connection = try ClientConnectionTests.Connection()
        try connection.send(["COMMAND COUNT"])
        #expect(try connection.written() == ":\(CommandParser.commandNames.count)\r\n")
    }

    @Test(arguments: [
        ("save", "save", true), ("*", "anything", true), ("app*", "appendonly", true), ("APP*", "appendonly", true),
        ("max?lients", "maxclients", true), ("a*e*y", "appendonly", true), ("a*x", "appendonly", false),
        ("?", "", false), ("", "", true), ("\\*", "*", true), ("\\*", "a", false),
    ])
    func globs(pattern: String, text: String, expected: Bool) {
        #expect(Glob.matches(Array(pattern.utf8), Array(text.utf8)) == expected)
    }
}

/// Counts `read` calls that reach the channel.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    var reads = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}
