/// One fault of the schedule: which kind, how long it lasts, how long the quiet after its heal.
struct PlannedFault: Sendable {
    var kind: FaultKind
    var faultMillis: Int
    var quietMillis: Int
}

/// The seeded sequence of faults: first every kind once in a shuffled order (so even a short
/// run covers them all), then kinds drawn at random. The same seed gives the same sequence,
/// the same durations and the same random targets.
struct Schedule: Sendable {
    private var generator: SeededGenerator
    private var firstPass: [FaultKind]

    init(seed: UInt64) {
        generator = SeededGenerator(seed: seed)
        firstPass = FaultKind.allCases.shuffled(using: &generator)
    }

    mutating func next() -> PlannedFault {
        let kinds = FaultKind.allCases
        let kind = firstPass.isEmpty ? kinds[Int.random(in: kinds.indices, using: &generator)] : firstPass.removeFirst()
        return PlannedFault(
            kind: kind,
            faultMillis: Int.random(in: Limits.faultMillis, using: &generator),
            quietMillis: Int.random(in: Limits.quietMillis, using: &generator))
    }

    /// The generator for the faults' random targets, derived from the same seed.
    static func targetGenerator(seed: UInt64) -> SeededGenerator {
        SeededGenerator(seed: seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
}
