import NIOCore
import NIOPosix
import Testing

@testable import KVDaemon

/// kvd probes its addresses at start (to report a port in use in one line) before binding them
/// for real. A connection made during the probe must not be left open with nobody serving it:
/// a client that connected in the first milliseconds of a node's start used to wait for its
/// reply forever.
@Suite struct AddressProbeTests {
    @Test func aConnectionMadeDuringTheProbeIsClosedWithIt() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let probe = try await Daemon.probeBind(host: "127.0.0.1", port: 0, group: group)
        let port = try #require(probe.localAddress?.port)
        let client = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
        // Give an accepting probe the time to accept, as it did before.
        try await Task.sleep(for: .milliseconds(50))
        try await probe.close()
        var waited = 0
        while client.isActive && waited < 3_000 {
            try await Task.sleep(for: .milliseconds(20))
            waited += 20
        }
        let stillOpen = client.isActive
        try? await client.close()
        #expect(!stillOpen, "the connection made during the probe is still open \(waited) ms after the probe closed")
    }
}
