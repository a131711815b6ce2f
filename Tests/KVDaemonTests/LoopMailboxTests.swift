import RaftCore
import Testing

@testable import KVDaemon

/// The Raft loop's mailbox is bounded, and says what it did with each input.
@Suite struct LoopMailboxTests {
    static func batch(_ term: UInt64) -> LoopInput {
        .peerMessages([Message(from: 2, to: 1, term: Term(term), body: .timeoutNow)])
    }

    static func term(of input: LoopInput) -> UInt64? {
        if case .peerMessages(let messages) = input { return messages.first?.term.rawValue }
        return nil
    }

    /// A tick that arrives while one waits is merged into it: a stalled loop does not then run a
    /// burst of ticks.
    @Test func ticksMerge() {
        let mailbox = LoopMailbox()
        #expect(mailbox.post(.tick) == .queued)
        #expect(mailbox.post(.tick) == .merged)
        #expect(mailbox.drain().count == 1)
        #expect(mailbox.post(.tick) == .queued, "after a drain a tick queues again")
    }

    /// Beyond the limit the oldest peer batch is dropped (and counted); the newest are kept.
    @Test func peerBatchesDropOldest() {
        let mailbox = LoopMailbox(limits: LoopMailbox.Limits(peerBatchesMax: 3, commandsMax: 10))
        for term in 1...3 { #expect(mailbox.post(Self.batch(UInt64(term))) == .queued) }
        for term in 4...5 { #expect(mailbox.post(Self.batch(UInt64(term))) == .queuedDroppingOldest) }
        #expect(mailbox.drain().compactMap(Self.term(of:)) == [3, 4, 5])
        #expect(mailbox.peerBatchesDropped == 2)
    }

    /// Beyond the limit a client command is refused at once (definite: it never reached Raft);
    /// ticks and peer batches still get through.
    @Test func commandsRefusedWhenFull() {
        let mailbox = LoopMailbox(limits: LoopMailbox.Limits(peerBatchesMax: 3, commandsMax: 2))
        let command = LoopInput.command(.ping(nil), routing: CommandRouting(), .none)
        #expect(mailbox.post(command) == .queued)
        #expect(mailbox.post(command) == .queued)
        #expect(mailbox.post(command) == .refused)
        #expect(mailbox.post(.tick) == .queued)
        #expect(mailbox.post(Self.batch(1)) == .queued)
        #expect(mailbox.drain().count == 4)
        #expect(mailbox.post(command) == .queued, "room again after a drain")
        mailbox.close()
        #expect(mailbox.post(.tick) == .refused)
        #expect(mailbox.isClosed)
    }

    /// Iteration statistics: the maximum is exact, a quantile is within a bucket (25 %).
    @Test func iterationQuantiles() {
        var stats = LoopIterationStats()
        #expect(stats.quantileMicros(0.999) == 0)
        for micros in 1...1000 { stats.record(micros: UInt64(micros)) }
        stats.record(micros: 80_000)
        #expect(stats.count == 1001)
        #expect(stats.maxMicros == 80_000)
        let p99 = stats.quantileMicros(0.99)
        #expect(p99 >= 990 && p99 <= 1250, "p99 \(p99)")
        #expect(stats.quantileMicros(1.0) == 80_000)
        for micros: UInt64 in [4, 5, 7, 8, 100, 1 << 40] {
            #expect(LoopIterationStats.upperBound(LoopIterationStats.bucket(micros)) >= micros || micros == 1 << 40)
        }
    }
}
