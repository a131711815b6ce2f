import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What must be undone when the run ends, however it ends: daemon processes, network
/// namespaces and the bridge. Registered as they are made, torn down once, in reverse order,
/// by the normal exit path or by the SIGINT/SIGTERM handler.
final class Cleanup: Sendable {
    private struct State {
        var pids: [pid_t] = []
        var namespaces: [String] = []
        var links: [String] = []
        var done = false
    }

    private let state = Mutex(State())

    /// The registry of this process.
    static let shared = Cleanup()

    func addProcess(_ pid: pid_t) { state.withLock { $0.pids.append(pid) } }
    func removeProcess(_ pid: pid_t) { state.withLock { $0.pids.removeAll { $0 == pid } } }
    func addNamespace(_ name: String) { state.withLock { $0.namespaces.append(name) } }
    func addLink(_ name: String) { state.withLock { $0.links.append(name) } }

    /// Kills every registered process (resuming stopped ones so SIGKILL is delivered at once),
    /// then deletes the namespaces and links. Runs once; later calls return at once.
    func tearDown() {
        let work = state.withLock { state -> State? in
            guard !state.done else { return nil }
            state.done = true
            return state
        }
        guard let work else { return }
        for pid in work.pids {
            kill(pid, SIGCONT)
            kill(pid, SIGKILL)
        }
        for pid in work.pids { _ = Shell.waitForExit(pid) }
        for namespace in work.namespaces.reversed() {
            Topology.killProcesses(inNamespace: namespace)
            _ = try? Shell.run(["ip", "netns", "del", namespace])
        }
        for link in work.links.reversed() {
            _ = try? Shell.run(["ip", "link", "del", link])
        }
    }

    /// Tears down and exits on SIGINT or SIGTERM (status 128 + signal).
    func installSignalHandlers() -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                say("kvd-faults: signal \(number): tearing down namespaces, bridge and nodes")
                Cleanup.shared.tearDown()
                exit(128 + number)
            }
            source.resume()
            return source
        }
    }
}
