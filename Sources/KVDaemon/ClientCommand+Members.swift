public import KVStore

/// `MEMBER LIST | ADD | PROMOTE | REMOVE` (docs/PROTOCOL.md, "Membership"): single-server
/// membership changes (Raft thesis §4.1) and the members' addresses.
public enum MemberRequest: Hashable, Sendable {
    /// Every member: addresses, voter or learner, the leader's match index, reachability.
    case list
    /// Records the addresses, then adds the node as a learner.
    case add(MemberAddresses)
    /// Makes a caught-up learner a voter.
    case promote(UInt64)
    /// Removes a voter or learner (the leader hands leadership over first).
    case remove(UInt64)
}

extension CommandParser {
    static func parseMember(_ args: [[UInt8]]) throws(CommandError) -> ClientCommand {
        guard let sub = args.first else { throw arity("MEMBER") }
        let rest = Array(args.dropFirst())
        switch upper(sub) {
        case "LIST":
            _ = try exactly(0, rest, "MEMBER LIST")
            return .member(.list)
        case "ADD":
            guard rest.count == 3 || rest.count == 4 else {
                throw CommandError("wrong number of arguments for 'MEMBER ADD' (id peer-host:port client-host:port [metrics-host:port])")
            }
            let id = try memberID(rest[0])
            let peer = try address(rest[1], "peer"), client = try address(rest[2], "client")
            let metrics = try rest.count == 4 ? address(rest[3], "metrics") : nil
            let addresses = [peer, client] + (metrics.map { [$0] } ?? [])
            guard Set(addresses).count == addresses.count else { throw CommandError("node \(id)'s addresses must differ") }
            return .member(.add(MemberAddresses(id: id, peer: peer, client: client, metrics: metrics)))
        case "PROMOTE":
            return .member(.promote(try memberID(try exactly(1, rest, "MEMBER PROMOTE")[0])))
        case "REMOVE":
            return .member(.remove(try memberID(try exactly(1, rest, "MEMBER REMOVE")[0])))
        default:
            throw CommandError("unknown subcommand for 'MEMBER' (LIST, ADD, PROMOTE, REMOVE)")
        }
    }

    static func memberID(_ bytes: [UInt8]) throws(CommandError) -> UInt64 {
        let id = try unsigned(bytes, "node id")
        guard id > 0 else { throw CommandError("node id must be a positive integer") }
        return id
    }

    /// A `host:port` as `cluster.conf` writes it (`HostPort`), normalised.
    static func address(_ bytes: [UInt8], _ what: String) throws(CommandError) -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let address = HostPort.parse(Substring(text)) else {
            throw CommandError("bad \(what) address '\(text)': expected host:port (IPv6 as [host]:port)")
        }
        return address.description
    }
}
