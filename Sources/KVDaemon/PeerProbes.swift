import NIOCore

/// The probes of one peer connection: which were sent when, and which were answered.
///
/// The dialing side sends a numbered probe every `heartbeat-ms`; the other side answers each on
/// the same connection, in order. An answer proves that every byte written before its probe
/// arrived and that the peer's process runs, so the age of the oldest unanswered probe is how long
/// the connection has not been known to deliver. A pure value, so the rules are tested without a
/// network.
struct PeerProbes: Sendable {
    /// Send times of the unanswered probes, oldest first; the first has number `oldestUnanswered`.
    private var sentAt = CircularBuffer<NIODeadline>()
    private var oldestUnanswered: UInt64 = 1

    /// Most probes waiting for an answer; a connection is declared stalled long before this.
    static let unansweredMax = 4096

    /// The number of the next probe.
    var nextSequence: UInt64 { oldestUnanswered + UInt64(sentAt.count) }

    /// Records a probe sent at `now` and returns its number.
    mutating func send(at now: NIODeadline) -> UInt64 {
        let sequence = nextSequence
        if sentAt.count == Self.unansweredMax {
            sentAt.removeFirst()
            oldestUnanswered += 1
        }
        sentAt.append(now)
        return sequence
    }

    /// Records the answer to probe `sequence` (which answers every earlier probe too). Answers to
    /// probes never sent, or already answered, change nothing and return false.
    @discardableResult
    mutating func answer(_ sequence: UInt64) -> Bool {
        guard sequence >= oldestUnanswered, sequence < nextSequence else { return false }
        let answered = Int(sequence - oldestUnanswered) + 1
        sentAt.removeFirst(answered)
        oldestUnanswered = sequence + 1
        return true
    }

    /// How long the oldest unanswered probe has waited at `now`, or nil if all are answered.
    func oldestUnansweredAge(at now: NIODeadline) -> TimeAmount? {
        sentAt.first.map { now - $0 }
    }
}
