import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ClusterTests {
    @Test("two kvctl lock contenders: never concurrent, increasing tokens, the superseded token is fenced off", arguments: [3, 5])
    func lockContenders(size: Int) async throws {
        let redisCLI = try Tools.redisCLI()
        try await withCluster(size: size) { cluster, _ in
            let markers = cluster.directory + "/markers"
            let script = cluster.directory + "/critical-section.sh"
            let ports = cluster.nodes.map { String($0.clientPort) }.joined(separator: " ")
            // Each holder appends start/end markers with its token. The second one, while it holds
            // the lock, sends a fenced write with the first holder's token (must be -STALE) and one
            // with its own (must apply), trying each node until one is not a follower.
            try writeFile(
                script,
                """
                #!/bin/sh
                fenced() { # TOKEN VALUE -> redis-cli's output at the leader
                    for port in \(ports); do
                        out=$("\(redisCLI)" -h 127.0.0.1 -p "$port" FENCED deploy "$1" SET fenced-key "$2" 2>&1)
                        case "$out" in NOTLEADER*|*refused*) continue ;; esac
                        echo "$out"; return
                    done
                    echo "no leader answered"
                }
                previous=$(sed -n 's/^start //p' "\(markers)" 2>/dev/null | tail -n 1)
                echo "start $KVD_LOCK_TOKEN" >> "\(markers)"
                if [ -n "$previous" ]; then
                    fenced "$previous" stale-write > "\(markers).stale"
                    fenced "$KVD_LOCK_TOKEN" holder-write > "\(markers).own"
                fi
                sleep 0.5
                echo "end $KVD_LOCK_TOKEN" >> "\(markers)"
                """)

            // Both contenders start at the same moment.
            let arguments = ["lock", "deploy", "--timeout", "60", "--", "/bin/sh", script]
            async let first = cluster.kvctl(arguments)
            async let second = cluster.kvctl(arguments)
            let results = try await [first, second]
            for result in results {
                #expect(result.status == 0, "kvctl lock: \(result)")
            }

            // Never concurrent: start/end pairs strictly alternate, with increasing tokens.
            let lines = readFile(markers).split(separator: "\n").map(String.init)
            #expect(lines.count == 4, "markers: \(lines)")
            var tokens: [UInt64] = []
            for pair in stride(from: 0, to: lines.count - 1, by: 2) {
                let start = lines[pair].split(separator: " "), end = lines[pair + 1].split(separator: " ")
                #expect(start.first == "start" && end.first == "end" && start.last == end.last, "interleaved holders: \(lines)")
                if let token = start.last.flatMap({ UInt64($0) }) { tokens.append(token) }
            }
            #expect(tokens.count == 2 && tokens[0] < tokens[1], "tokens must strictly increase: \(lines)")

            // While the second holder held the lock, the first token was rejected, its own accepted.
            let stale = readFile(markers + ".stale").trimmingCharacters(in: .whitespacesAndNewlines)
            let own = readFile(markers + ".own").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(stale.hasPrefix("STALE"), "fenced write with the superseded token: \(stale.debugDescription)")
            #expect(own == "OK", "fenced write with the holder's token: \(own.debugDescription)")
            let value = try await cluster.kvctl(["get", "fenced-key"])
            #expect(value.stdout == "holder-write\n", "\(value)")

            // Released: the lock is free again, and an old token still cannot write.
            if tokens.count == 2 {
                let late = try await cluster.kvctl(["lock", "deploy", "--timeout", "20", "--", "/bin/sh", "-c", "exit 7"])
                #expect(late.status == 7, "kvctl lock exits with the command's status: \(late)")
                let leader = try await cluster.waitForLeader()
                let fenced = try await cluster.redisCLI(leader, ["FENCED", "deploy", String(tokens[0]), "SET", "fenced-key", "x"])
                #expect(fenced.output.hasPrefix("STALE"), "\(fenced)")
                // The fence register: a token below the highest seen is refused.
                let high = try await cluster.kvctl(["fence", "resource", String(tokens[1])])
                #expect(high.status == 0, "\(high)")
                let low = try await cluster.kvctl(["fence", "resource", String(tokens[0])])
                #expect(low.status != 0 && low.errorLines.count == 1, "\(low)")
            }
        }
    }
}
