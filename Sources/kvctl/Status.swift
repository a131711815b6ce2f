import ArgumentParser
import KVProtocol

/// What one node said to `INFO`, or that it did not answer.
struct NodeInfo: Sendable {
    var configured: ConfiguredNode
    /// `name:value` fields of the INFO reply; empty when unreachable.
    var fields: [String: String]
    var reachable: Bool

    /// Asks every node `INFO` directly and concurrently (no redirects), in configured order.
    static func collect(client: KVClient, nodes: [ConfiguredNode], timeout: Duration) async -> [NodeInfo] {
        await withTaskGroup(of: (Int, NodeInfo).self) { group in
            for (index, node) in nodes.enumerated() {
                group.addTask {
                    let reply = try? await client.request(["INFO"], at: node.endpoint, timeout: timeout)
                    guard let text = reply?.text else {
                        return (index, NodeInfo(configured: node, fields: [:], reachable: false))
                    }
                    return (index, NodeInfo(configured: node, fields: InfoFields.dictionary(text), reachable: true))
                }
            }
            var infos: [(Int, NodeInfo)] = []
            for await info in group { infos.append(info) }
            return infos.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    var id: String { fields["node_id"] ?? configured.id ?? "-" }
    var role: String { reachable ? (fields["role"] ?? "?") : "unreachable" }
    /// The leader's id, or `-` when the node knows none (`leader_id:0`).
    var leader: String {
        guard let leader = fields["leader_id"], leader != "0", !leader.isEmpty else { return "-" }
        return leader
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask every configured node INFO; one row per node (role, term, leader, commit and applied index).")
    @OptionGroup var cluster: ClusterOptions
    @OptionGroup var deadline: TimeoutOption
    @Flag(help: "Print a JSON array of objects instead of a table.") var json = false

    func run() async throws {
        let perNode = min(try deadline.duration, .seconds(2))
        let infos = try await withClient(cluster, timeout: try deadline.duration) { client, nodes in
            await NodeInfo.collect(client: client, nodes: nodes, timeout: perNode)
        }
        Output.line(json ? Self.json(infos) : Self.table(infos))
        guard infos.contains(where: \.reachable) else { throw CLIError("no node answered INFO") }
    }

    static let columns = ["ID", "CLIENT", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED"]

    static func table(_ infos: [NodeInfo]) -> String {
        let rows = [columns] + infos.map { info in
            [
                info.id, info.configured.endpoint.description, info.role, info.fields["term"] ?? "-", info.leader,
                info.fields["commit_index"] ?? "-", info.fields["applied_index"] ?? "-",
            ]
        }
        return Output.table(rows)
    }

    static func json(_ infos: [NodeInfo]) -> String {
        let objects = infos.map { info in
            let members = [
                ("id", jsonScalar(info.reachable || info.configured.id != nil ? info.id : nil)),
                ("client", jsonString(info.configured.endpoint.description)),
                ("role", jsonString(info.role)),
                ("term", jsonScalar(info.fields["term"])),
                ("leader", jsonScalar(info.leader == "-" ? nil : info.leader)),
                ("commit_index", jsonScalar(info.fields["commit_index"])),
                ("applied_index", jsonScalar(info.fields["applied_index"])),
            ]
            return "{" + members.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
        }
        return "[" + objects.joined(separator: ",\n ") + "]"
    }

    /// A number if `text` is all digits, a string otherwise, `null` if absent.
    static func jsonScalar(_ text: String?) -> String {
        guard let text else { return "null" }
        if !text.isEmpty, text.count <= 18, text.allSatisfy({ $0.isASCII && $0.isNumber }) { return text }
        return jsonString(text)
    }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case _ where scalar.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
