#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KVAuth
import RaftCore

extension ClusterConfig {
    /// Most bytes a configuration file may have: a real one is a few kilobytes, and a limit means
    /// a wrong path (a log file, a device) fails fast instead of being read whole.
    public static let fileBytesMax = 1 << 20

    /// Reads and validates the configuration file at `path`.
    public static func load(path: String) throws(ConfigError) -> ClusterConfig {
        let text: String
        do {
            text = try readTextFile(path: path, bytesMax: fileBytesMax)
        } catch {
            throw ConfigError(file: path, line: nil, message: error.reason)
        }
        return try parse(text, file: path)
    }

    /// Parses and validates configuration `text`; `file` names it in error messages.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> ClusterConfig {
        var parser = ConfigParser(file: file)
        for (offset, rawLine) in lines(of: text).enumerated() {
            try parser.consume(line: rawLine, number: offset + 1)
        }
        return try parser.finish()
    }

    /// The lines of `text`. "\r\n" is one `Character` in Swift, so it is a separator of its own.
    static func lines(of text: String) -> [Substring] {
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    }
}

/// Accumulates the lines of one file; every check that concerns a single line happens as the
/// line is read, so its error carries that line's number.
struct ConfigParser {
    let file: String
    var settings = ClusterSettings()
    var settingLines: [String: Int] = [:]
    var nodes: [ClusterNode] = []
    /// Every address already used, with the line that used it: no two listeners may share one.
    var addressLines: [HostPort: Int] = [:]
    let integerSettings = IntegerSetting.all

    init(file: String) { self.file = file }

    func error(_ line: Int?, _ message: String) -> ConfigError {
        ConfigError(file: file, line: line, message: message)
    }

    mutating func consume(line rawLine: Substring, number: Int) throws(ConfigError) {
        let content = rawLine.prefix { $0 != "#" }
        let words = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
        guard let first = words.first else { return }
        if first == "node" {
            try consumeNode(words.dropFirst(), number: number)
        } else {
            try consumeSetting(name: String(first), values: words.dropFirst(), number: number)
        }
    }

    mutating func consumeSetting(name: String, values: ArraySlice<Substring>, number: Int) throws(ConfigError) {
        guard ClusterSettings.textSettingNames.contains(name) || integerSettings.contains(where: { $0.name == name }) else {
            throw error(number, "unknown setting '\(name)'\(suggestion(for: name))")
        }
        if let earlier = settingLines[name] {
            throw error(number, "duplicate setting '\(name)' (first set on line \(earlier))")
        }
        guard values.count == 1, let value = values.first else {
            throw error(number, "setting '\(name)' needs exactly one value, found \(values.count)")
        }
        settingLines[name] = number
        if name == "cluster-id" {
            guard (1...64).contains(value.count),
                value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
            else {
                throw error(number, "cluster-id '\(value)' must be 1 to 64 of A-Z a-z 0-9 . _ -")
            }
            settings.clusterID = String(value)
            return
        }
        if name == "requirepass" {
            do {
                _ = try PasswordHash(parsing: String(value))
            } catch {
                throw self.error(number, "requirepass: \(error)")
            }
            settings.requirePass = String(value)
            return
        }
        if name == "users-file" {
            settings.usersFile = String(value)
            return
        }
        if name == "peer-secret-file" {
            settings.peerSecretFile = String(value)
            return
        }
        if let keyPath = ClusterSettings.tlsFileSettings[name] {
            settings[keyPath: keyPath] = String(value)
            return
        }
        if name == "tls-client-certs" {
            guard let mode = TLSClientCertificates(rawValue: String(value)) else {
                throw error(number, "tls-client-certs '\(value)' must be none, optional or required")
            }
            settings.tlsClientCertificates = mode
            return
        }
        for setting in integerSettings where setting.name == name {
            guard value.allSatisfy({ $0.isASCII && $0.isNumber }), let parsed = Int(value) else {
                throw error(number, "value '\(value)' of '\(name)' is not a whole number")
            }
            guard setting.range.contains(parsed) else {
                throw error(number, "\(name) \(parsed) is out of range \(setting.range.lowerBound)...\(setting.range.upperBound)")
            }
            settings[keyPath: setting.keyPath] = parsed
        }
    }

    /// A hint for a misspelt setting: a known name that starts with it, or that it starts with.
    func suggestion(for name: String) -> String {
        let close = ClusterSettings.names.first { $0.hasPrefix(name) || name.hasPrefix($0) }
        return close.map { " (did you mean '\($0)'?)" } ?? ""
    }

    mutating func consumeNode(_ words: ArraySlice<Substring>, number: Int) throws(ConfigError) {
        guard let idWord = words.first else { throw error(number, "node line needs an id") }
        guard idWord.allSatisfy({ $0.isASCII && $0.isNumber }), let raw = UInt64(idWord), raw > 0 else {
            throw error(number, "node id '\(idWord)' is not a positive integer")
        }
        let id = NodeID(raw)
        if let earlier = nodes.first(where: { $0.id == id }) {
            throw error(number, "duplicate node id \(id) (first defined on line \(earlier.line))")
        }
        var addresses: [String: HostPort] = [:]
        for word in words.dropFirst() {
            guard let equals = word.firstIndex(of: "=") else {
                throw error(number, "expected key=host:port, found '\(word)'")
            }
            let key = String(word[..<equals])
            guard ["peer", "client", "metrics", "client-tls"].contains(key) else {
                throw error(number, "unknown node key '\(key)' (expected peer, client, client-tls or metrics)")
            }
            guard addresses[key] == nil else { throw error(number, "duplicate '\(key)' address for node \(id)") }
            let text = word[word.index(after: equals)...]
            guard let address = HostPort.parse(text) else {
                throw error(number, "malformed \(key) address '\(text)' (expected host:port with port 1-65535)")
            }
            if let earlier = addressLines[address] {
                throw error(number, "duplicate address \(address) (already used on line \(earlier))")
            }
            addressLines[address] = number
            addresses[key] = address
        }
        guard let peer = addresses["peer"] else { throw error(number, "node \(id) needs a peer=host:port address") }
        // Without client=, a node with client-tls= serves clients over TLS only.
        guard let client = addresses["client"] ?? addresses["client-tls"] else {
            throw error(number, "node \(id) needs a client=host:port address (or client-tls=host:port, to serve clients over TLS only)")
        }
        nodes.append(
            ClusterNode(
                id: id, peer: peer, client: client, metrics: addresses["metrics"], line: number, clientTLS: addresses["client-tls"],
                servesPlainClients: addresses["client"] != nil))
    }

    mutating func finish() throws(ConfigError) -> ClusterConfig {
        guard !nodes.isEmpty else { throw error(nil, "defines no nodes (expected lines 'node <id> peer=host:port client=host:port')") }
        // The minimum lease TTL follows the election timeout unless set explicitly.
        if settingLines["lease-min-ttl-ms"] == nil {
            settings.leaseMinTTLMillis = 2 * settings.electionTimeoutMillis
        }
        // A stuck peer connection is noticed within an election timeout unless set explicitly.
        if settingLines["peer-stall-timeout-ms"] == nil {
            settings.peerStallTimeoutMillis = settings.electionTimeoutMillis
        }
        let lines = settingLines
        try settings.checkRelations(file: file) { lines[$0] }
        return ClusterConfig(nodes: nodes, settings: settings, file: file)
    }
}

/// A file that could not be read; `reason` names the path and the system's message.
struct FileReadError: Error {
    let reason: String
    /// The `errno` of the failed call, if a system call failed (ENOENT: the file does not exist).
    var code: Int32? = nil
}

/// The whole UTF-8 text of the file at `path`, refusing files over `bytesMax` bytes.
func readTextFile(path: String, bytesMax: Int) throws(FileReadError) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
        let code = errno
        throw FileReadError(reason: "cannot open: \(systemError(code))", code: code)
    }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 << 10)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            let code = errno
            if code == EINTR { continue }
            throw FileReadError(reason: "cannot read: \(systemError(code))", code: code)
        }
        if count == 0 { break }
        bytes.append(contentsOf: chunk[0..<count])
        guard bytes.count <= bytesMax else { throw FileReadError(reason: "file is larger than \(bytesMax) bytes") }
    }
    guard let text = String(validating: bytes, as: UTF8.self) else {
        throw FileReadError(reason: "file is not UTF-8 text")
    }
    return text
}

/// The current `errno` as text, e.g. "No such file or directory".
func systemError(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}
