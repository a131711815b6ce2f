import NIOCore
import NIOPosix
import RaftCore
import Testing

@testable import KVDaemon

/// The probe bookkeeping on its own: ages, answers, out-of-range answers, the bound.
@Suite struct PeerProbesTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test("the oldest unanswered probe's age is what a stall is judged by; an answer covers every earlier probe")
    func agesAndAnswers() {
        var probes = PeerProbes()
        #expect(probes.oldestUnansweredAge(at: start) == nil)
        let numbers = [probes.send(at: start), probes.send(at: start + .milliseconds(50)), probes.send(at: start + .milliseconds(100))]
        #expect(numbers == [1, 2, 3])
        #expect(probes.oldestUnansweredAge(at: start + .milliseconds(300)) == .milliseconds(300))
        let second = probes.answer(2)
        #expect(second)
        #expect(probes.oldestUnansweredAge(at: start + .milliseconds(300)) == .milliseconds(200))
        let repeated = probes.answer(2), unsent = probes.answer(9)
        #expect(!repeated, "an answer already counted")
        #expect(!unsent, "an answer to a probe never sent")
        let third = probes.answer(3)
        #expect(third)
        #expect(probes.oldestUnansweredAge(at: start + .milliseconds(300)) == nil)
        let next = probes.send(at: start)
        #expect(next == 4)
    }

    @Test("unanswered probes are bounded; the oldest are forgotten, the age stays large")
    func bounded() {
        var probes = PeerProbes()
        for index in 0..<(PeerProbes.unansweredMax + 10) { _ = probes.send(at: start + .milliseconds(Int64(index))) }
        #expect(probes.oldestUnansweredAge(at: start + .seconds(100)) == .seconds(100) - .milliseconds(10))
        let last = probes.answer(UInt64(PeerProbes.unansweredMax + 10))
        #expect(last)
    }
}

/// Peer links that notice they deliver nothing, and reports of unreachable peers.
@Suite(.serialized) struct PeerLivenessTests {
    let group = MultiThreadedEventLoopGroup.singleton

    @Test("probe frames survive encoding; a probe on a version 1 connection or unprompted answers are refused")
    func probeFrames() throws {
        let parser = PeerFrameParser(frameBytesMax: 1024)
        for frame in [PeerOutboundFrame.probe(7), .probeAnswer(UInt64.max)] {
            var buffer = ByteBuffer()
            PeerWire.write(frame, to: &buffer)
            let decoded = try parser.next(from: &buffer)
            switch (frame, decoded) {
            case (.probe(let sent), .probe(let received)?), (.probeAnswer(let sent), .probeAnswer(let received)?):
                #expect(sent == received)
            default: Issue.record("\(frame) decoded as \(String(describing: decoded))")
            }
        }
        #expect(throws: PeerWireError.self) { try PeerWire.decodeFrame(type: 4, payload: [1, 2, 3]) }
        #expect(throws: PeerWireError.self) { try PeerWire.decodeFrame(type: 5, payload: [UInt8](repeating: 0, count: 9)) }
    }

    @Test("a peer whose kernel accepts bytes but whose process answers nothing is noticed as stalled, reported as stalled (not gone) and redialed")
    func stalledPeerIsNoticed() async throws {
        let ports = freePorts(2)
        let config = try loopbackConfig(ids: [1, 2], peerPorts: ports, extra: "peer-stall-timeout-ms 200")
        let stalled = try await StalledPeer.start(config: config, port: ports[1], group: group, version: 2)
        let node1 = try await PeerTransport.start(config: config, selfID: 1, group: group, logger: quietLogger)
        let inbox = Inbox(node1)
        #expect(await eventually { (node1.counters().peers[2]?.stalls ?? 0) >= 1 })
        let link = try #require(node1.counters().peers[2])
        #expect(link.probesSent >= 2)
        #expect(link.probesAnswered == 0)
        #expect(await eventually { (node1.counters().peers[2]?.connectAttempts ?? 0) >= 2 }, "the link redials")
        #expect(inbox.unreachable.isEmpty, "a stall is about timing, not evidence that the peer is gone")
        #expect(inbox.stalled.contains(2))
        await node1.shutdown()
        try await stalled.close()
    }

    @Test("live peers answer probes: no stalls, links count as connected, nobody is reported unreachable")
    func livePeersAnswer() async throws {
        // A generous limit: a busy test machine must not turn a slow answer into a stall here.
        let config = try loopbackConfig(ids: [1, 2], peerPorts: freePorts(2), extra: "peer-stall-timeout-ms 10000")
        let node1 = try await PeerTransport.start(config: config, selfID: 1, group: group, logger: quietLogger)
        let node2 = try await PeerTransport.start(config: config, selfID: 2, group: group, logger: quietLogger)
        let inbox1 = Inbox(node1)
        #expect(await eventually { node1.counters().connectedPeers == 1 && node2.counters().connectedPeers == 1 })
        // Node 2 was not listening yet when node 1 first dialed: that refusal was reported.
        let reportsBefore = inbox1.unreachable.count
        #expect(await eventually { (node1.counters().peers[2]?.probesAnswered ?? 0) >= 10 })
        let link = try #require(node1.counters().peers[2])
        #expect(link.stalls == 0)
        #expect(link.connected)
        #expect(node2.counters().peers[1]?.stalls == 0)
        #expect(inbox1.unreachable.count == reportsBefore)
        await node1.shutdown()
        await node2.shutdown()
    }

    @Test("when a peer goes away its connection's end is reported at once, and a returning peer is redialed without waiting out the back-off")
    func peerGoneIsReported() async throws {
        let extra = "peer-reconnect-min-ms 60000\npeer-reconnect-max-ms 60000"
        let config = try loopbackConfig(ids: [1, 2], peerPorts: freePorts(2), extra: extra)
        let node1 = try await PeerTransport.start(config: config, selfID: 1, group: group, logger: quietLogger)
        var node2 = try await PeerTransport.start(config: config, selfID: 2, group: group, logger: quietLogger)
        let inbox1 = Inbox(node1)
        #expect(await eventually { node1.counters().connectedPeers == 1 && node2.counters().connectedPeers == 1 })
        await node2.shutdown()
        #expect(await eventually { inbox1.unreachable.contains(2) })
        // node1's link to node 2 now waits a minute before redialing; node 2 coming back and
        // dialing node 1 must cut that short.
        node2 = try await PeerTransport.start(config: config, selfID: 2, group: group, logger: quietLogger)
        let inbox2 = Inbox(node2)
        #expect(await eventually(within: 10) { node1.counters().connectedPeers == 1 })
        node1.send([vote(from: 1, to: 2, term: 3)])
        #expect(await eventually { inbox2.messages.count == 1 })
        await node1.shutdown()
        await node2.shutdown()
    }
}
