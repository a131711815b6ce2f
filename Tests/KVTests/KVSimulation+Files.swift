#if canImport(Glibc)
import Glibc
#endif

extension KVSimulation {
    /// Creates a fresh directory for one simulation's state databases under the system's
    /// temporary directory.
    static func makeDirectory(seed: UInt64) -> String {
        var template = Array("/tmp/kvd-kvsim-\(seed)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in mkdtemp(buffer.baseAddress!) }
        precondition(made != nil, "cannot create a temporary directory for the KV simulation")
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Removes the files the simulation left in `directory`, then the directory.
    static func removeDirectory(_ directory: String) {
        guard let handle = opendir(directory) else { return }
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { unlink("\(directory)/\(name)") }
        }
        closedir(handle)
        rmdir(directory)
    }
}
