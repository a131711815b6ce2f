import KVProtocol

/// The options of `kvctl bench` as typed, before validation.
struct BenchRawOptions: Sendable {
    var workload: BenchWorkload = .put
    var clients = "16"
    var pipeline = 1
    var rate: Double?
    var duration: Double?
    var requests: Int?
    var warmup = 1.0
    var keys = 10_000
    var distribution: BenchDistribution = .uniform
    var zipfTheta = 0.99
    var seed: UInt64 = 1
    var valueBytes = 100
    var keyPrefix = "bench:"
    var readRatio = 0.9
    var leaseTTL = 10
    var lockWait = 2.0
    var timeout = 5.0
    var connectTimeout = 2.0

    /// Seconds a run measures when neither `--duration` nor `--requests` is given.
    static let defaultDurationSeconds = 10.0
}

extension BenchPlan {
    /// Checks every option against `BenchLimits` and against each other.
    static func validated(_ raw: BenchRawOptions, endpoints: [KVEndpoint]) throws(BenchError) -> BenchPlan {
        let levels = try parseClientLevels(raw.clients)
        guard (1...BenchLimits.pipelineMax).contains(raw.pipeline) else {
            throw .invalidOption("--pipeline must be between 1 and \(BenchLimits.pipelineMax)")
        }
        if raw.pipeline > 1 && !raw.workload.allowsPipelining {
            throw .invalidOption("--pipeline does not apply to \(raw.workload.rawValue): each cycle's requests depend on the one before")
        }
        let pacing: BenchPacing
        if let rate = raw.rate {
            guard rate.isFinite, rate > 0, rate <= BenchLimits.rateMax else {
                throw .invalidOption("--rate must be a number of requests per second in (0, \(Int(BenchLimits.rateMax))]")
            }
            guard raw.pipeline == 1 else {
                throw .invalidOption("--rate sends each request at its own time; use more --clients instead of --pipeline")
            }
            pacing = .openLoop(rate: rate)
        } else {
            pacing = .closedLoop(pipeline: raw.pipeline)
        }
        let stop: BenchStop
        switch (raw.duration, raw.requests) {
        case (.some, .some):
            throw .invalidOption("give --duration or --requests, not both")
        case (.some(let seconds), nil):
            guard seconds.isFinite, seconds > 0, seconds <= BenchLimits.secondsMax else {
                throw .invalidOption("--duration must be in (0, \(Int(BenchLimits.secondsMax))] seconds")
            }
            stop = .duration(seconds: seconds)
        case (nil, .some(let count)):
            guard count >= 1, count <= BenchLimits.requestsMax else {
                throw .invalidOption("--requests must be between 1 and \(BenchLimits.requestsMax)")
            }
            stop = .requests(count)
        case (nil, nil):
            stop = .duration(seconds: BenchRawOptions.defaultDurationSeconds)
        }
        try checkSeconds(raw.warmup, "--warmup", allowZero: true)
        try checkSeconds(raw.timeout, "--timeout", allowZero: false)
        try checkSeconds(raw.connectTimeout, "--connect-timeout", allowZero: false)
        try checkSeconds(raw.lockWait, "--lock-wait", allowZero: false)
        guard (1...BenchLimits.keysMax).contains(raw.keys) else {
            throw .invalidOption("--keys must be between 1 and \(BenchLimits.keysMax)")
        }
        guard BenchLimits.zipfThetaRange.contains(raw.zipfTheta) else {
            throw .invalidOption("--zipf-theta must be in [\(BenchLimits.zipfThetaRange.lowerBound), \(BenchLimits.zipfThetaRange.upperBound)]")
        }
        guard (0...BenchLimits.valueBytesMax).contains(raw.valueBytes) else {
            throw .invalidOption("--value-bytes must be between 0 and \(BenchLimits.valueBytesMax)")
        }
        guard raw.keyPrefix.utf8.count <= BenchLimits.keyPrefixBytesMax else {
            throw .invalidOption("--key-prefix is longer than \(BenchLimits.keyPrefixBytesMax) bytes")
        }
        guard raw.readRatio.isFinite, (0...1).contains(raw.readRatio) else {
            throw .invalidOption("--read-ratio must be between 0 and 1")
        }
        guard (1...BenchLimits.leaseTTLMax).contains(raw.leaseTTL) else {
            throw .invalidOption("--lease-ttl must be between 1 and \(BenchLimits.leaseTTLMax) seconds")
        }
        return BenchPlan(
            endpoints: endpoints, workload: raw.workload, clientLevels: levels, pacing: pacing, stop: stop,
            warmupSeconds: raw.warmup, keys: raw.keys, distribution: raw.distribution, zipfTheta: raw.zipfTheta,
            seed: raw.seed, valueBytes: raw.valueBytes, keyPrefix: raw.keyPrefix, readRatio: raw.readRatio,
            leaseTTLSeconds: raw.leaseTTL, lockWaitMilliseconds: Int(raw.lockWait * 1000),
            requestTimeout: .milliseconds(Int64(raw.timeout * 1000)),
            connectTimeout: .milliseconds(Int64(raw.connectTimeout * 1000)))
    }

    /// `16`, a list `1,2,4,8`, or a doubling range `1..256` (1, 2, 4, ..., 256).
    static func parseClientLevels(_ text: String) throws(BenchError) -> [Int] {
        let bad = BenchError.invalidOption(
            "--clients must be a positive count, a list like 1,2,4,8 or a doubling range like 1..256, got '\(text)'")
        var levels: [Int] = []
        if let range = text.firstRange(of: "..") {
            guard let low = Int(text[..<range.lowerBound]), let high = Int(text[range.upperBound...]), low >= 1, high >= low
            else { throw bad }
            guard high <= BenchLimits.clientsMax else { throw tooMany() }
            var level = low
            while level < high {
                levels.append(level)
                level *= 2
            }
            levels.append(high)
        } else {
            for item in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard let level = Int(item.filter { $0 != " " }) else { throw bad }
                guard level >= 1 else { throw .invalidOption("--clients must be at least 1, got \(level)") }
                guard level <= BenchLimits.clientsMax else { throw tooMany() }
                levels.append(level)
            }
        }
        guard !levels.isEmpty else { throw bad }
        guard levels.count <= BenchLimits.sweepLevelsMax else {
            throw .invalidOption("--clients lists at most \(BenchLimits.sweepLevelsMax) levels")
        }
        guard levels == levels.sorted(), Set(levels).count == levels.count else {
            throw .invalidOption("--clients levels must be increasing, got '\(text)'")
        }
        return levels
    }

    private static func tooMany() -> BenchError {
        .invalidOption("--clients must be at most \(BenchLimits.clientsMax)")
    }

    private static func checkSeconds(_ value: Double, _ name: String, allowZero: Bool) throws(BenchError) {
        let lowOK = allowZero ? value >= 0 : value > 0
        guard value.isFinite, lowOK, value <= BenchLimits.secondsMax else {
            throw .invalidOption("\(name) must be in \(allowZero ? "[" : "(")0, \(Int(BenchLimits.secondsMax))] seconds")
        }
    }
}
