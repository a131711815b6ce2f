import Glibc
import RaftCore
import Testing

@testable import KVDaemon

/// A fresh empty directory under /tmp for one test.
func makeTemporaryDirectory(_ label: String = "kvd-test") -> String {
    var template = Array("/tmp/\(label)-XXXXXX".utf8CString)
    let created = template.withUnsafeMutableBufferPointer { buffer in
        buffer.baseAddress.flatMap { mkdtemp($0) }.map { String(cString: $0) }
    }
    guard let created else { fatalError("mkdtemp failed: \(String(cString: strerror(errno)))") }
    return created
}

@Suite struct DataDirectoryTests {
    @Test("a fresh directory (and missing parents) is created and gets an identity file")
    func fresh() throws {
        let root = makeTemporaryDirectory()
        let path = root + "/data/2"
        let directory = try DataDirectory(path: path, clusterID: "demo", nodeID: 2)
        #expect(directory.raftLogPath == path + "/raft-log.sqlite")
        #expect(directory.stateMachinePath == path + "/state.sqlite")
        let identity = try readTextFile(path: directory.identityPath, bytesMax: 4096)
        #expect(identity == "cluster-id demo\nnode-id 2\n")
    }

    static func mode(_ path: String) -> mode_t {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o777 : 0
    }

    @Test("the node's directory is owner-only (700), its files 600, and a wider existing directory is tightened")
    func permissions() throws {
        let root = makeTemporaryDirectory()
        let path = root + "/data/2"
        let directory = try DataDirectory(path: path, clusterID: "demo", nodeID: 2)
        #expect(Self.mode(path) == 0o700)
        #expect(Self.mode(root + "/data") == 0o700, "missing parents too")
        #expect(Self.mode(directory.identityPath) == 0o600)
        #expect(Self.mode(directory.lockPath) == 0o600)
        let loose = makeTemporaryDirectory() + "/n1"
        #expect(mkdir(loose, 0o755) == 0)
        #expect(chmod(loose, 0o755) == 0)
        _ = try DataDirectory(path: loose, clusterID: "demo", nodeID: 1)
        #expect(Self.mode(loose) == 0o700)
    }

    @Test("reopening with the same identity works once the first holder is gone")
    func same() throws {
        let path = makeTemporaryDirectory() + "/n1"
        do { _ = try DataDirectory(path: path, clusterID: "demo", nodeID: 1) }
        let again = try DataDirectory(path: path, clusterID: "demo", nodeID: 1)
        #expect(again.nodeID == 1)
    }

    @Test("a directory of another cluster is refused with one clear line")
    func otherCluster() throws {
        let path = makeTemporaryDirectory() + "/data/2"
        do { _ = try DataDirectory(path: path, clusterID: "x", nodeID: 2) }
        #expect(throws: DataDirectoryError.belongsElsewhere(path: path, foundCluster: "x", foundNode: 2, cluster: "demo", node: 2)) {
            _ = try DataDirectory(path: path, clusterID: "demo", nodeID: 2)
        }
        let message = DataDirectoryError.belongsElsewhere(path: "data/2", foundCluster: "x", foundNode: 3, cluster: "demo", node: 2)
        #expect(message.description == "data directory data/2 belongs to cluster 'x' node 3, not cluster 'demo' node 2")
    }

    @Test("a directory of another node is refused")
    func otherNode() throws {
        let path = makeTemporaryDirectory() + "/data/3"
        do { _ = try DataDirectory(path: path, clusterID: "demo", nodeID: 3) }
        #expect(throws: DataDirectoryError.belongsElsewhere(path: path, foundCluster: "demo", foundNode: 3, cluster: "demo", node: 2)) {
            _ = try DataDirectory(path: path, clusterID: "demo", nodeID: 2)
        }
    }

    @Test("a directory in use is refused; the lock goes away with its holder")
    func lockedTwice() throws {
        let path = makeTemporaryDirectory() + "/d"
        var first: DataDirectory? = try DataDirectory(path: path, clusterID: "demo", nodeID: 1)
        #expect(throws: DataDirectoryError.locked(path: path)) {
            _ = try DataDirectory(path: path, clusterID: "demo", nodeID: 1)
        }
        #expect(first?.nodeID == 1)
        first = nil
        _ = try DataDirectory(path: path, clusterID: "demo", nodeID: 1)
    }

    @Test("a damaged identity file is reported, not overwritten")
    func damagedIdentity() throws {
        let path = makeTemporaryDirectory()
        let fd = open(path + "/identity", O_WRONLY | O_CREAT, 0o644)
        _ = "hello world\n".withCString { write(fd, $0, 12) }
        close(fd)
        #expect(throws: DataDirectoryError.corruptIdentity(path: path + "/identity", "unexpected line 'hello world'")) {
            _ = try DataDirectory(path: path, clusterID: "demo", nodeID: 1)
        }
    }

    @Test("a path that is a file is refused")
    func notADirectory() throws {
        let path = makeTemporaryDirectory() + "/file"
        close(open(path, O_WRONLY | O_CREAT, 0o644))
        #expect(throws: DataDirectoryError.io(path: path, "is not a directory")) {
            _ = try DataDirectory(path: path, clusterID: "demo", nodeID: 1)
        }
    }
}
