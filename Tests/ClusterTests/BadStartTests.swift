import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ClusterTests {
    /// Runs kvd with `arguments` (it must exit on its own) and checks the start-up contract: a non-zero exit
    /// status and exactly one line on stderr, which contains every one of `mentions`.
    func expectBadStart(
        _ cluster: Cluster, _ arguments: [String], mentions: [String], sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let result = try await runCommand(Tools.kvd, arguments, timeout: .seconds(30))
        #expect(result.status != 0, "kvd \(arguments) should fail: \(result)", sourceLocation: sourceLocation)
        #expect(result.errorLines.count == 1, "kvd \(arguments) should print one line on stderr: \(result)", sourceLocation: sourceLocation)
        for mention in mentions {
            #expect(result.stderr.contains(mention), "stderr should mention \(mention.debugDescription): \(result)", sourceLocation: sourceLocation)
        }
    }

    @Test("bad starts: unknown id, malformed config, port in use, another cluster's data dir — exit non-zero with one line")
    func badStarts() async throws {
        let cluster = try Cluster(size: 3)
        defer { cluster.shutdown() }
        let config = cluster.configPath
        let data = cluster.directory + "/bad-start-data"

        // An id that is not in the configuration.
        try await expectBadStart(cluster, ["--config", config, "--id", "9", "--data-dir", data], mentions: ["9"])

        // Malformed configurations: the error names the file and the line.
        let good = readFile(config).split(separator: "\n").map(String.init)
        let cases: [(lines: [String], line: Int)] = [
            (Array(good[0...1]) + ["heartbeat 25"] + good[2...], 3),  // unknown setting
            (good + ["node 2 peer=127.0.0.1:1 client=127.0.0.1:2"], good.count + 1),  // duplicate id
            (good + ["node 4 peer=127.0.0.1 client=127.0.0.1:99999"], good.count + 1),  // bad addresses
            (good + ["election-timeout-ms soon"], good.count + 1),  // not a number
        ]
        for (index, bad) in cases.enumerated() {
            let path = cluster.directory + "/bad\(index).conf"
            try writeFile(path, bad.lines.joined(separator: "\n") + "\n")
            try await expectBadStart(
                cluster, ["--config", path, "--id", "1", "--data-dir", data], mentions: ["bad\(index).conf:\(bad.line)"])
        }
        // A missing configuration file.
        try await expectBadStart(
            cluster, ["--config", cluster.directory + "/missing.conf", "--id", "1", "--data-dir", data], mentions: ["missing.conf"])

        // A port in use: the client port, then the peer port.
        for port in [cluster.node(1).clientPort, cluster.node(1).peerPort] {
            let listener = try listenOn(port: port)
            defer { close(listener) }
            try await expectBadStart(
                cluster, ["--config", config, "--id", "1", "--data-dir", data + "-\(port)"],
                mentions: [String(port), "Address already in use"])
            // Nothing is left behind: the data directory is created only once the ports are free.
            #expect(access(data + "-\(port)", F_OK) != 0, "a failed start left its data directory")
        }

        // A data directory from another cluster (and from another node of this one).
        try cluster.start(1)
        try await eventually("node 1 to serve clients", diagnostics: { cluster.diagnostics() }) {
            await cluster.info(1) != nil
        }
        try await cluster.kill9(1)
        let other = cluster.directory + "/other.conf"
        try writeFile(other, readFile(config).replacingOccurrences(of: "cluster-id ctest", with: "cluster-id another"))
        let nodeData = cluster.node(1).dataDirectory
        try await expectBadStart(cluster, ["--config", other, "--id", "1", "--data-dir", nodeData], mentions: ["ctest", "another"])
        try await expectBadStart(cluster, ["--config", config, "--id", "2", "--data-dir", nodeData], mentions: [nodeData])

        // Two kvd on one data directory: the second is refused while the first runs.
        try cluster.start(1)
        try await eventually("node 1 to serve clients again", diagnostics: { cluster.diagnostics() }) {
            await cluster.info(1) != nil
        }
        let second = try await runCommand(Tools.kvd, ["--config", config, "--id", "1", "--data-dir", nodeData], timeout: .seconds(30))
        #expect(second.status != 0 && second.errorLines.count == 1, "a second kvd on a used data directory: \(second)")
        #expect(cluster.child(1)?.isRunning == true, "the first node keeps running")
    }
}
