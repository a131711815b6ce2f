#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import RaftCore

/// A node's data directory (`data/<id>` by default): its SQLite databases, an `identity` file that
/// ties it to one cluster and one node, and a `lock` file held with `flock` for as long as this
/// value lives, so two kvd processes can never write the same Raft log.
///
/// Why the identity: starting node 2 on node 3's directory (or another cluster's) would make it
/// vote and acknowledge entries with a log that is not its own, which breaks Raft's safety. The
/// check is cheap and turns that mistake into one clear line at start.
///
/// The identity file is plain text, written once on first start:
/// ```
/// cluster-id demo
/// node-id 2
/// ```
public final class DataDirectory: Sendable {
    /// The directory, as given.
    public let path: String
    /// The cluster this directory belongs to.
    public let clusterID: String
    /// The node this directory belongs to.
    public let nodeID: NodeID
    /// The open descriptor of the lock file; the `flock` on it is released when it is closed (in
    /// `deinit`) or when the process dies, so a `kill -9` never leaves a stale lock behind.
    private let lockDescriptor: Int32

    /// The default directory for node `id`: `data/<id>` relative to the working directory.
    public static func defaultPath(for id: NodeID) -> String { "data/\(id)" }

    /// Most bytes of the identity file; it holds two short lines.
    public static let identityBytesMax = 4096

    /// Opens `path` for node `nodeID` of cluster `clusterID`: creates the directory (and its
    /// parents) if missing, writes the identity on first start or checks it otherwise, and takes
    /// the lock. Throws if the directory belongs to another cluster or node, or another process
    /// holds it.
    public init(path: String, clusterID: String, nodeID: NodeID) throws(DataDirectoryError) {
        self.path = path
        self.clusterID = clusterID
        self.nodeID = nodeID
        try Self.createDirectories(path)
        // Lock before reading or writing the identity, so two processes starting together
        // cannot both decide the directory is fresh.
        lockDescriptor = try Self.lock(path: path)
        do {
            try Self.checkOrWriteIdentity(path: path, clusterID: clusterID, nodeID: nodeID)
        } catch {
            close(lockDescriptor)
            throw error
        }
    }

    deinit {
        close(lockDescriptor)
    }

    /// The SQLite database of the Raft log, hard state and snapshot metadata.
    public var raftLogPath: String { "\(path)/raft-log.sqlite" }
    /// The SQLite database of the replicated state machine (keys, leases, locks, sessions).
    public var stateMachinePath: String { "\(path)/state.sqlite" }
    /// The identity file.
    public var identityPath: String { "\(path)/identity" }
    /// The lock file.
    public var lockPath: String { "\(path)/lock" }

    private static func createDirectories(_ path: String) throws(DataDirectoryError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, directoryMode) != 0 && errno != EEXIST {
                throw .io(path: prefix, "cannot create directory: \(systemError())")
            }
            prefix += "/"
        }
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw .io(path: path, "is not a directory")
        }
        // The node's own directory holds every key: only kvd's user may enter it, even if it was
        // made by hand with a wider mode.
        if info.st_mode & 0o077 != 0, chmod(path, directoryMode) != 0 {
            throw .io(path: path, "cannot restrict the directory to its owner (chmod 700): \(systemError())")
        }
    }

    /// Directories kvd creates: owner only (`rwx------`). Files are `rw-------` (kvd's umask).
    static let directoryMode: mode_t = 0o700
    static let fileMode: mode_t = 0o600

    private static func lock(path: String) throws(DataDirectoryError) -> Int32 {
        let lockPath = "\(path)/lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, fileMode)
        guard fd >= 0 else { throw .io(path: lockPath, "cannot open: \(systemError())") }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            close(fd)
            if code == EWOULDBLOCK { throw .locked(path: path) }
            throw .io(path: lockPath, "cannot lock: \(systemError(code))")
        }
        return fd
    }

    private static func checkOrWriteIdentity(path: String, clusterID: String, nodeID: NodeID)
        throws(DataDirectoryError)
    {
        let identityPath = "\(path)/identity"
        let text: String
        do {
            text = try readTextFile(path: identityPath, bytesMax: identityBytesMax)
        } catch {
            guard error.code == ENOENT else { throw .io(path: identityPath, error.reason) }
            try writeIdentity(path: identityPath, clusterID: clusterID, nodeID: nodeID)
            return
        }
        let stored = try parseIdentity(text, path: identityPath)
        guard stored.clusterID == clusterID, stored.nodeID == nodeID else {
            throw .belongsElsewhere(
                path: path, foundCluster: stored.clusterID, foundNode: stored.nodeID, cluster: clusterID, node: nodeID)
        }
    }

    static func parseIdentity(_ text: String, path: String) throws(DataDirectoryError) -> (clusterID: String, nodeID: NodeID) {
        var cluster: String?
        var node: NodeID?
        for line in ClusterConfig.lines(of: text) where !line.isEmpty {
            let words = line.split(separator: " ")
            guard words.count == 2 else { throw .corruptIdentity(path: path, "unexpected line '\(line)'") }
            switch words[0] {
            case "cluster-id": cluster = String(words[1])
            case "node-id":
                guard let raw = UInt64(words[1]), raw > 0 else {
                    throw .corruptIdentity(path: path, "bad node-id '\(words[1])'")
                }
                node = NodeID(raw)
            default: throw .corruptIdentity(path: path, "unexpected line '\(line)'")
            }
        }
        guard let cluster, let node else { throw .corruptIdentity(path: path, "missing cluster-id or node-id") }
        return (cluster, node)
    }

    /// Writes the identity to a temporary file, fsyncs it, renames it into place and fsyncs the
    /// directory, so a crash leaves either no identity or a complete one.
    private static func writeIdentity(path: String, clusterID: String, nodeID: NodeID) throws(DataDirectoryError) {
        let temporary = path + ".tmp"
        let bytes = Array("cluster-id \(clusterID)\nnode-id \(nodeID)\n".utf8)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, fileMode)
        guard fd >= 0 else { throw .io(path: temporary, "cannot create: \(systemError())") }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let reason = systemError()
                close(fd)
                throw .io(path: temporary, "cannot write: \(reason)")
            }
            written += count
        }
        let synced = fsync(fd) == 0
        let reason = systemError()
        close(fd)
        guard synced else { throw .io(path: temporary, "cannot fsync: \(reason)") }
        guard rename(temporary, path) == 0 else { throw .io(path: path, "cannot rename into place: \(systemError())") }
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        let dirFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }
}

/// Why a data directory cannot be used. `description` is one line naming the directory.
public enum DataDirectoryError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The directory's identity names another cluster or node.
    case belongsElsewhere(path: String, foundCluster: String, foundNode: NodeID, cluster: String, node: NodeID)
    /// Another process (another kvd) holds the directory's lock.
    case locked(path: String)
    /// The identity file exists but is not one kvd wrote.
    case corruptIdentity(path: String, String)
    /// A file-system operation failed.
    case io(path: String, String)

    public var description: String {
        switch self {
        case .belongsElsewhere(let path, let foundCluster, let foundNode, let cluster, let node):
            return "data directory \(path) belongs to cluster '\(foundCluster)' node \(foundNode), not cluster '\(cluster)' node \(node)"
        case .locked(let path):
            return "data directory \(path) is in use by another kvd process (its lock file is held)"
        case .corruptIdentity(let path, let reason):
            return "identity file \(path) is damaged: \(reason)"
        case .io(let path, let reason):
            return "\(path): \(reason)"
        }
    }
}
