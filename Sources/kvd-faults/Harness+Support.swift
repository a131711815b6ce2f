import FoundationEssentials
import KVProtocol

#if canImport(Glibc)
import Glibc
#endif

/// The harness's helpers: final reads, files and directories, log tails.
extension Harness {
    /// The counters' final values, read linearizably once every fault is healed; the lock
    /// counter's read also joins the register history.
    func finalReads(_ cluster: Cluster, _ recorder: Recorder) async -> FinalReads {
        var configuration = KVClient.Configuration(endpoints: cluster.endpoints)
        configuration.requestTimeout = Limits.leaderWaitMax
        let client = KVClient(configuration: configuration)
        defer { Task { await client.close() } }
        var finals = FinalReads()
        let call = recorder.callRegister(client: ClientIDs.final, .get(LockWorkload.counterKey), at: recorder.now())
        if let reply = try? await client.request(["GET", LockWorkload.counterKey], idempotent: true) {
            recorder.returnRegister(call, .value(reply.isNull ? nil : reply.text), at: recorder.now())
            finals.lockCounter = reply.isNull ? 0 : reply.integerValue
        } else {
            recorder.discardRegister(call)
        }
        if let reply = try? await client.request(["GET", SessionWorkload.counterKey], idempotent: true) {
            finals.sessionCounter = reply.isNull ? 0 : reply.integerValue
        }
        return finals
    }

    func absoluteBinary(_ name: String) throws(HarnessError) -> String {
        var directory = settings.binDirectory
        if !directory.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            guard getcwd(&buffer, buffer.count) != nil else { throw HarnessError.binaryMissing(path: directory + "/" + name) }
            directory = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + directory
        }
        let path = "\(directory)/\(name)"
        guard access(path, X_OK) == 0 else {
            throw HarnessError.binaryMissing(path: path)
        }
        return path
    }

    func makeWorkDirectory(_ runID: String) throws(HarnessError) -> String {
        var template = Array("/tmp/kvd-faults-\(runID)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw HarnessError.fileWrite(path: "/tmp", detail: "mkdtemp: errno \(errno)") }
        let path = String(cString: made)
        guard mkdir("\(path)/data", 0o755) == 0 else { throw HarnessError.fileWrite(path: "\(path)/data", detail: "errno \(errno)") }
        return path
    }

    func writeSummary(_ summary: RunSummary, to path: String) throws(HarnessError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            let data = try encoder.encode(summary)
            try writeFile(path, String(decoding: data, as: UTF8.self) + "\n")
        } catch let error as HarnessError {
            throw error
        } catch {
            throw HarnessError.fileWrite(path: path, detail: "\(error)")
        }
    }

    func logTails(_ cluster: Cluster) async -> String {
        var text = ""
        for node in cluster.topology.nodes {
            text += "\n--- node \(node) log (last lines) ---\n" + (await cluster.logTail(node))
        }
        return text
    }
}
