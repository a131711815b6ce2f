import Glibc
import NIOCore
import NIOPosix
import RaftCore
import Testing

@testable import KVDaemon

/// A blocking TCP client for feeding a transport hand-made bytes.
struct RawPeer {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0, "connect: \(String(cString: strerror(errno)))")
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    func send(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }

    /// Sends one byte per write (TCP_NODELAY: one segment each), pausing every 32 bytes so the
    /// receiver sees many tiny reads. Pausing after every byte made the test take nearly a minute
    /// on a loaded machine (each sleep stretches to milliseconds) and run past its wait; the
    /// parser itself is tested one byte at a time without sockets.
    func sendSlowly(_ bytes: [UInt8]) async {
        for (offset, byte) in bytes.enumerated() {
            send([byte])
            if offset % 32 == 31 { try? await Task.sleep(for: .microseconds(200)) }
        }
    }

    /// Everything the other side sends until it closes (or 10 s pass).
    func readToEnd() -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { return result }
            result += chunk[0..<count]
        }
    }

    func close() { _ = Glibc.close(fd) }
}

func bytes(of frame: PeerOutboundFrame) -> [UInt8] {
    var buffer = ByteBuffer()
    PeerWire.write(frame, to: &buffer)
    return buffer.readBytes(length: buffer.readableBytes) ?? []
}

@Suite(.serialized) struct PeerRawSocketTests {
    let group = MultiThreadedEventLoopGroup.singleton

    @Test("a handshake and messages arriving one byte at a time through the NIO decoder are delivered")
    func byteAtATimeOnTheWire() async throws {
        let ports = freePorts(2)
        // The raw peer sends no probes, and on a busy machine its trickle may pause longer than
        // the default silence limit: that limit is not what this test is about.
        let config = try loopbackConfig(ids: [1, 2], peerPorts: ports, extra: "peer-stall-timeout-ms 60000")
        let node1 = try await PeerTransport.start(config: config, selfID: 1, group: group, logger: quietLogger)
        let inbox = Inbox(node1)
        let peer = try RawPeer(port: ports[0])
        await peer.sendSlowly(bytes(of: .handshake(PeerHandshake(clusterID: "demo", sender: 2, receiver: 1))))
        var generator = MessageGenerator(seed: 99)
        let messages = (0..<MessageGenerator.bodyKinds).map { kind in
            var message = generator.message(kind: kind)
            message.from = 2
            message.to = 1
            return message
        }
        var payload = ByteBuffer()
        for message in messages { payload.writeBytes(PeerWire.encode(message)) }
        await peer.sendSlowly(bytes(of: .messages(count: messages.count, bytes: payload)))
        #expect(await eventually { inbox.messages.count == messages.count })
        #expect(inbox.messages == messages)
        peer.close()
        await node1.shutdown()
    }

    @Test(
        "garbage, an oversized length, a wrong first frame or a forged sender closes that connection with a reason; the node keeps serving",
        arguments: [
            ("HTTP", Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), "frame length"),
            ("oversized", [0xFF, 0xFF, 0xFF, 0x7F], "frame length"),
            ("unknown type", [1, 0, 0, 0, 99], "unknown peer frame type 99"),
            ("messages first", bytes(of: .messages(count: 0, bytes: ByteBuffer())), "expected a handshake first"),
            ("bad magic", [9, 0, 0, 0, 1] + Array("XXXX".utf8) + [1, 0, 0, 0], "bad handshake magic"),
            ("other version", [9, 0, 0, 0, 1] + PeerWire.magic + [4, 0, 0, 0], "protocol version 4"),
            ("another cluster", bytes(of: .handshake(PeerHandshake(clusterID: "x", sender: 2, receiver: 1))), "cluster id 'x'"),
            ("unknown node", bytes(of: .handshake(PeerHandshake(clusterID: "demo", sender: 7, receiver: 1))), "node 7 is not a member"),
            ("wrong receiver", bytes(of: .handshake(PeerHandshake(clusterID: "demo", sender: 2, receiver: 3))), "this is node 1, not node 3"),
            (
                "forged sender",
                bytes(of: .handshake(PeerHandshake(clusterID: "demo", sender: 2, receiver: 1)))
                    + bytes(of: .messages(count: 1, bytes: ByteBuffer(bytes: PeerWire.encode(vote(from: 3, to: 1, term: 1))))),
                "message from 3 to 1"
            ),
        ] as [(String, [UInt8], String)])
    func badPeers(label: String, input: [UInt8], reason: String) async throws {
        let ports = freePorts(3)
        let config = try loopbackConfig(ids: [1, 2, 3], peerPorts: ports)
        let node1 = try await PeerTransport.start(config: config, selfID: 1, group: group, logger: quietLogger)
        let inbox = Inbox(node1)
        let peer = try RawPeer(port: ports[0])
        peer.send(input)
        let answer = String(decoding: peer.readToEnd(), as: UTF8.self)
        #expect(answer.contains(reason), "\(label): \(answer)")
        peer.close()
        #expect(node1.counters().connectionsRefused >= 1)
        // A well-behaved node 3 still gets through.
        let node3 = try await PeerTransport.start(config: config, selfID: 3, group: group, logger: quietLogger)
        let delivered = await eventually {
            node3.send([vote(from: 3, to: 1, term: 5)])
            return inbox.messages.contains { $0.from == 3 && $0.term == 5 }
        }
        #expect(delivered, "\(label)")
        #expect(!inbox.messages.contains { $0.from != 3 }, "\(label)")
        await node3.shutdown()
        await node1.shutdown()
    }
}
