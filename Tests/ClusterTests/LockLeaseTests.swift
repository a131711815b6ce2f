import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ClusterTests {
    @Test("kvctl lock without a command prints its token at once, keeps the lock past its TTL, releases on SIGTERM")
    func lockWithoutCommand() async throws {
        try await withCluster(size: 3) { cluster, _ in
            let out = cluster.directory + "/hold.out"
            let holder = try cluster.spawn(
                Tools.kvctl, ["--config", cluster.configPath, "lock", "hold", "--ttl", "2"], stdout: out,
                stderr: cluster.directory + "/hold.err")
            try await eventually("the token on stdout") { !readFile(out).isEmpty }
            let token = try #require(UInt64(readFile(out).trimmingCharacters(in: .whitespacesAndNewlines)))
            // Several TTLs later the lock is still held: kvctl keeps its lease alive.
            await pause(.seconds(5))
            let leader = try await cluster.waitForLeader()
            let owner = try await cluster.redisCLI(leader, ["OWNER", "hold"])
            #expect(owner.output.split(separator: "\n").last.map(String.init) == String(token), "OWNER: \(owner)")
            holder.signal(SIGTERM)
            #expect(try await holder.wait(timeout: .seconds(20)) == 0)
            let released = try await cluster.redisCLI(try await cluster.waitForLeader(), ["OWNER", "hold"])
            #expect(released.output.isEmpty, "the lock is still held after SIGTERM: \(released)")
        }
    }

    @Test("kvctl lock -- COMMAND: a lost lease stops the command with SIGTERM; kvctl exits with its status")
    func lostLeaseStopsTheCommand() async throws {
        try await withCluster(size: 3) { cluster, _ in
            let out = cluster.directory + "/lost.out"
            let script = cluster.directory + "/hold.sh"
            try writeFile(
                script,
                """
                #!/bin/sh
                echo "lease=$KVD_LEASE_ID"
                sleep 60 &
                child=$!
                trap 'kill $child; echo got-sigterm; exit 143' TERM
                wait
                """)
            let holder = try cluster.spawn(
                Tools.kvctl, ["--config", cluster.configPath, "lock", "lost", "--ttl", "3", "--", "/bin/sh", script],
                stdout: out, stderr: out)
            try await eventually("the command to start") { readFile(out).contains("lease=") }
            let lease = try #require(
                readFile(out).split(separator: "\n").first { $0.hasPrefix("lease=") }.map { String($0.dropFirst(6)) })
            // Someone else ends the lease (as an expiry would after a long pause).
            let revoke = try await cluster.redisCLI(try await cluster.waitForLeader(), ["LEASE", "REVOKE", lease])
            #expect(revoke.output == "OK", "LEASE REVOKE: \(revoke)")
            #expect(try await holder.wait(timeout: .seconds(30)) == 143)
            #expect(readFile(out).contains("got-sigterm"), "the command was not sent SIGTERM: \(readFile(out))")
        }
    }

    @Test("kvctl lease grant, ttl, keepalive and revoke")
    func leaseCommands() async throws {
        try await withCluster(size: 3) { cluster, _ in
            let grant = try await cluster.kvctl(["lease", "grant", "5"])
            #expect(grant.status == 0, "\(grant)")
            let id = grant.output
            #expect(UInt64(id) != nil, "lease id: \(grant)")
            let ttl = try await cluster.kvctl(["lease", "ttl", id])
            #expect(ttl.status == 0 && ttl.output.hasPrefix("remaining=") && ttl.output.hasSuffix("granted=5.000s"), "\(ttl)")
            let keepalive = try await cluster.kvctl(["lease", "keepalive", id])
            #expect(keepalive.status == 0 && keepalive.output == "5", "\(keepalive)")
            let revoke = try await cluster.kvctl(["lease", "revoke", id])
            #expect(revoke.status == 0 && revoke.output == "OK", "\(revoke)")
            let gone = try await cluster.kvctl(["lease", "ttl", id])
            #expect(gone.status != 0 && gone.stdout.isEmpty && gone.errorLines.count == 1, "\(gone)")
            let tooShort = try await cluster.kvctl(["lease", "grant", "0.001"])
            #expect(tooShort.status != 0 && tooShort.errorLines.count == 1, "\(tooShort)")
        }
    }
}
