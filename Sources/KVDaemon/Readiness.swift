import KVProtocol

/// Whether a node is ready to serve clients, for `GET /ready` (a load balancer's or an
/// orchestrator's readiness check): it is a member of the cluster (a voter or a learner), it knows
/// a leader, and its state machine has applied all but at most `applyLagMax` of the entries it
/// knows are committed. `/health` answers whenever the process does; `/ready` only when all three
/// hold.
public struct Readiness: Sendable, Equatable {
    /// The most committed entries a ready node may still have to apply.
    public static let applyLagMax: UInt64 = 1_000

    /// Why the node is not ready; empty when it is.
    public var reasons: [String]

    public var isReady: Bool { reasons.isEmpty }

    /// Judges the `kvd` section of `INFO`.
    public init(info: String) {
        let fields = InfoFields.dictionary(info)
        var reasons: [String] = []
        let id = fields["node_id"] ?? ""
        let members = (fields["voters"] ?? "").split(separator: ",") + (fields["learners"] ?? "").split(separator: ",")
        if !members.contains(where: { $0 == id }) { reasons.append("not a member of the cluster") }
        if (fields["leader_id"] ?? "0") == "0" { reasons.append("no leader known") }
        let commit = UInt64(fields["commit_index"] ?? "") ?? 0
        let applied = UInt64(fields["applied_index"] ?? "") ?? 0
        if commit > applied + Self.applyLagMax { reasons.append("applying: \(commit - applied) committed entries behind") }
        self.reasons = reasons
    }

    init(reasons: [String]) { self.reasons = reasons }

    /// `{"ready":true}` or `{"ready":false,"reasons":["no leader known"]}`.
    public var json: String {
        guard !isReady else { return "{\"ready\":true}" }
        let list = reasons.map { "\"\(Daemon.jsonEscaped($0))\"" }.joined(separator: ",")
        return "{\"ready\":false,\"reasons\":[\(list)]}"
    }
}
