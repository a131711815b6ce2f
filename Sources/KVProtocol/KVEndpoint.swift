/// One node's client address, `host:port` (IPv6 hosts in brackets: `[::1]:7001`).
public struct KVEndpoint: Hashable, Sendable, CustomStringConvertible {
    /// Host name or IP address, without brackets.
    public var host: String
    /// TCP port.
    public var port: Int

    /// An endpoint from its parts.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` or `[v6]:port`; `nil` if it is not of that form or the port is not in
    /// 1...65535.
    public init?(_ text: some StringProtocol) {
        let text = text.trimmingSpaces
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[text.startIndex..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            return nil
        }
        self.init(host: host, port: port)
    }

    /// `host:port`, with brackets around an IPv6 host.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Parses a comma-separated list; throws naming the first entry that is not `host:port`.
    /// A bare port reuses the previous entry's host: `127.0.0.1:7001,7002,7003`.
    public static func parseList(_ text: String) throws(KVClientError) -> [KVEndpoint] {
        var endpoints: [KVEndpoint] = []
        for item in text.split(separator: ",") where !item.trimmingSpaces.isEmpty {
            if let previous = endpoints.last, let port = Int(item.trimmingSpaces), (1...65535).contains(port) {
                endpoints.append(KVEndpoint(host: previous.host, port: port))
                continue
            }
            guard let endpoint = KVEndpoint(item) else {
                throw KVClientError(.invalidEndpoint, "invalid endpoint '\(item.trimmingSpaces)': expected host:port")
            }
            endpoints.append(endpoint)
        }
        guard !endpoints.isEmpty else { throw KVClientError(.invalidEndpoint, "no endpoints given") }
        return endpoints
    }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: Substring {
        let scalars = self[...]
        guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }),
            let last = scalars.lastIndex(where: { $0 != " " && $0 != "\t" })
        else { return "" }
        return Substring(scalars[first...last])
    }
}
