/// A fixed-size set of operation positions, the "which operations are linearized" half of the
/// search cache key.
///
/// It keeps a 64-bit fingerprint (the xor of a mixed value per member) up to date on every
/// insert and remove, so hashing a cache key costs O(1) instead of O(operations / 64); equality
/// still compares the words, so a fingerprint collision costs time, never correctness.
struct Bitset: Hashable {
    private var words: [UInt64]
    private(set) var fingerprint: UInt64 = 0

    /// An empty set able to hold positions `0..<capacity`.
    init(capacity: Int) {
        words = Array(repeating: 0, count: (capacity + 63) / 64)
    }

    func contains(_ position: Int) -> Bool {
        words[position >> 6] & (1 << UInt64(position & 63)) != 0
    }

    mutating func insert(_ position: Int) {
        precondition(!contains(position), "position \(position) is already in the set")
        words[position >> 6] |= 1 << UInt64(position & 63)
        fingerprint ^= Bitset.mix(position)
    }

    mutating func remove(_ position: Int) {
        precondition(contains(position), "position \(position) is not in the set")
        words[position >> 6] &= ~(1 << UInt64(position & 63))
        fingerprint ^= Bitset.mix(position)
    }

    /// Whether every member of `self` is a member of `other` (of the same capacity).
    func isSubset(of other: Bitset) -> Bool {
        for (mine, theirs) in zip(words, other.words) where mine & ~theirs != 0 {
            return false
        }
        return true
    }

    static func == (lhs: Bitset, rhs: Bitset) -> Bool {
        lhs.fingerprint == rhs.fingerprint && lhs.words == rhs.words
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(fingerprint)
    }

    /// SplitMix64's finalizer: spreads consecutive positions over all 64 bits so that xor-ing
    /// them rarely collides.
    private static func mix(_ position: Int) -> UInt64 {
        var z = UInt64(truncatingIfNeeded: position) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
