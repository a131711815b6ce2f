import Foundation
import KVAuth
import Testing

/// Real processes with users (docs/SECURITY.md): nothing but the handshake runs before `AUTH`,
/// a wrong password is refused and logged without the password, and each user is held to its
/// permissions and key patterns, over redis-cli, kvctl and a raw connection.
@Suite(.serialized) struct SecurityTests {
    static let passwords = ["admin": "admin-secret-1", "app": "app-secret-2", "reader": "reader-secret-3"]

    /// Fast elections, and the users of `writeUsers`.
    static let usersSettings: KeyValuePairs<String, String> = [
        "heartbeat-ms": "25", "election-timeout-ms": "250", "request-timeout-ms": "5000", "users-file": "users.conf",
    ]

    /// Writes `users.conf` beside the cluster's configuration (which names it relatively).
    static func writeUsers(_ cluster: Cluster) throws {
        func hash(_ user: String) throws -> String {
            try PasswordHash.make(password: Array((passwords[user] ?? "").utf8)).description
        }
        let lines = [
            "# test users",
            "user admin \(try hash("admin")) +all ~*",
            "user app \(try hash("app")) +read +write +locks ~app:*",
            "user reader \(try hash("reader")) +read ~*",
        ]
        try writeFile(cluster.directory + "/users.conf", lines.joined(separator: "\n") + "\n")
    }

    static func mode(_ path: String) -> mode_t {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o777 : 0
    }

    /// A plain-text `PING` at `port`: the reply, or nil if none came (a TLS port gives none).
    static func plainPing(_ port: Int) async throws -> Reply? {
        try await offload { () -> Reply? in
            let connection = try RawConnection(port: port, timeout: .seconds(3))
            defer { connection.close() }
            _ = connection.send("PING\r\n")
            return try? connection.readReply()
        }
    }

    /// Sends each request on a fresh connection (after `prelude`, if any) and returns the replies.
    static func replies(_ port: Int, prelude: String? = nil, _ requests: [String]) async throws -> [Reply] {
        try await offload {
            var replies: [Reply] = []
            for request in requests {
                let connection = try RawConnection(port: port)
                defer { connection.close() }
                if let prelude { _ = try connection.roundTrip(prelude + "\r\n") }
                replies.append(try connection.roundTrip(request + "\r\n"))
            }
            return replies
        }
    }

    @Test("users: -NOAUTH before AUTH on every command, -WRONGPASS logged without the password, read-only and prefix-limited users held to their permissions")
    func usersAndPermissions() async throws {
        let cluster = try Cluster(size: 3, settings: Self.usersSettings, infoAuth: "admin \(Self.passwords["admin"] ?? "")")
        defer { cluster.shutdown() }
        try Self.writeUsers(cluster)
        try cluster.startAll()
        let leader = try await cluster.waitForLeader()
        let port = cluster.node(leader).clientPort

        // Before AUTH: every command but the handshake is refused, unknown ones included.
        let data = [
            "GET k", "SET k v", "DEL k", "INCR n", "MGET a b", "KEYS *", "SCAN 0", "DBSIZE", "LEASE GRANT 10",
            "LOCK l LEASE 1", "FENCE f 1", "INFO", "CONFIG GET *", "MEMBER LIST", "SNAPSHOT BEGIN", "FLUSHALL", "MULTI",
            "PING", "ECHO x", "CLIENT ID", "SELECT 0", "LEADER TRANSFER 2", "NOSUCHCOMMAND", "SESSION REGISTER",
        ]
        for (request, reply) in zip(data, try await Self.replies(port, data)) {
            #expect(reply == .error("NOAUTH Authentication required."), "\(request) before AUTH: \(reply)")
        }

        // Wrong passwords and unknown users get the same answer; the log names the user, not the password.
        let wrong = try await Self.replies(port, ["AUTH app not-the-password", "AUTH nobody whatever", "AUTH lonely-password"])
        #expect(wrong.allSatisfy { $0 == .error("WRONGPASS invalid username-password pair or user is disabled.") }, "\(wrong)")
        let log = readFile(cluster.node(leader).logPath)
        #expect(log.contains("client authentication failed") && log.contains("user=app"))
        #expect(!log.contains("not-the-password") && !log.contains(Self.passwords["app"] ?? "?"), "no password in the log")

        // HELLO AUTH authenticates in the handshake (RESP2 here: this test's decoder has no maps).
        let hello = try await Self.replies(port, ["HELLO 2 AUTH app \(Self.passwords["app"] ?? "")"])
        if case .array(let fields?) = hello[0] {
            #expect(fields.first == .bulk("server"), "\(fields)")
        } else {
            Issue.record("HELLO 2 AUTH: \(hello[0])")
        }

        // app: read, write, locks on app:* only; no admin.
        let app = "AUTH app \(Self.passwords["app"] ?? "")"
        let appReplies = try await Self.replies(port, prelude: app, [
            "SET app:1 v", "GET app:1", "SET other v", "GET other", "MSET app:2 x other y", "KEYS *", "FLUSHALL",
            "LEASE GRANT 10", "MEMBER ADD 9 127.0.0.1:1 127.0.0.1:2", "FENCED other 1 SET app:3 v",
        ])
        #expect(appReplies[0] == .simple("OK"))
        #expect(appReplies[1] == .bulk("v"))
        #expect(appReplies[2] == .error("NOPERM No permissions to access a key"))
        #expect(appReplies[3] == .error("NOPERM No permissions to access a key"))
        #expect(appReplies[4] == .error("NOPERM No permissions to access a key"), "one key out of bounds refuses the whole MSET")
        #expect(appReplies[5].isError(startingWith: "NOPERM User app has no permissions to access every key"))
        #expect(appReplies[6] == .error("NOPERM User app has no permissions to run the 'flushall' command"))
        if case .integer = appReplies[7] {} else { Issue.record("app may grant leases: \(appReplies[7])") }
        #expect(appReplies[8] == .error("NOPERM User app has no permissions to run the 'member' command"))
        #expect(appReplies[9] == .error("NOPERM No permissions to access a key"), "a fenced write names its lock")

        // reader: reads everything, writes and locks nothing.
        let reader = "AUTH reader \(Self.passwords["reader"] ?? "")"
        let readerReplies = try await Self.replies(port, prelude: reader, ["GET app:1", "KEYS app:*", "SET app:1 w", "LEASE GRANT 10", "LOCK l LEASE 1"])
        #expect(readerReplies[0] == .bulk("v"))
        #expect(readerReplies[1] == .array([.bulk("app:1")]))
        #expect(readerReplies[2] == .error("NOPERM User reader has no permissions to run the 'set' command"))
        #expect(readerReplies[3] == .error("NOPERM User reader has no permissions to run the 'lease' command"))
        #expect(readerReplies[4] == .error("NOPERM User reader has no permissions to run the 'lock' command"))
        #expect(try await Self.replies(port, prelude: reader, ["GET app:1"]) == [.bulk("v")], "nothing was written")

        // A transaction with one refused command is aborted as a whole.
        let transaction = try await offload {
            let connection = try RawConnection(port: port)
            defer { connection.close() }
            _ = try connection.roundTrip(app + "\r\n")
            return try ["MULTI", "SET app:t 1", "SET other 1", "EXEC"].map { try connection.roundTrip($0 + "\r\n") }
        }
        #expect(transaction.last?.isError(startingWith: "EXECABORT") == true, "\(transaction)")

        // kvctl: without credentials it is told how to give them; with them it works; a bad password is definite.
        let bare = try await cluster.kvctl(["get", "app:1"])
        #expect(bare.status == 1 && bare.stderr.contains("NOAUTH") && bare.stderr.contains("KVCTL_PASSWORD"), "\(bare)")
        let passwordFile = cluster.directory + "/app.password"
        try writeFile(passwordFile, (Self.passwords["app"] ?? "") + "\n")
        let put = try await cluster.kvctl(["--user", "app", "--password-file", passwordFile, "put", "app:kvctl", "yes"])
        #expect(put.status == 0, "\(put)")
        let get = try await runCommand(
            Tools.kvctl, ["--config", cluster.configPath, "get", "app:kvctl"],
            environment: ["KVCTL_USER": "app", "KVCTL_PASSWORD": Self.passwords["app"] ?? ""])
        #expect(get.status == 0 && get.output == "yes", "\(get)")
        let bad = try await runCommand(
            Tools.kvctl, ["--config", cluster.configPath, "get", "app:kvctl"], environment: ["KVCTL_USER": "app", "KVCTL_PASSWORD": "nope"])
        #expect(bad.status == 1 && bad.stderr.contains("WRONGPASS") && !bad.stderr.contains("may or may not"), "\(bad)")

        // Files: the data directory is owner-only and so is every file kvd made in it.
        let dataDirectory = cluster.node(leader).dataDirectory
        #expect(Self.mode(dataDirectory) == 0o700)
        for file in ["raft-log.sqlite", "state.sqlite", "identity"] {
            #expect(Self.mode(dataDirectory + "/" + file) == 0o600, "\(file)")
        }
        // No secret in CONFIG GET or INFO.
        let shown = try await Self.replies(port, prelude: "AUTH admin \(Self.passwords["admin"] ?? "")", ["CONFIG GET *", "INFO"])
        #expect(!"\(shown)".contains("pbkdf2") && !Self.passwords.values.contains { "\(shown)".contains($0) }, "\(shown)")
    }

    @Test("SIGHUP reloads the users: changed permissions apply to open connections, a removed user must authenticate again, a broken file keeps the old users")
    func usersReload() async throws {
        let cluster = try Cluster(size: 1, settings: Self.usersSettings, infoAuth: "admin \(Self.passwords["admin"] ?? "")")
        defer { cluster.shutdown() }
        try Self.writeUsers(cluster)
        try cluster.startAll()
        try await cluster.waitForLeader()
        let port = cluster.node(1).clientPort
        let logPath = cluster.node(1).logPath
        let usersPath = cluster.directory + "/users.conf"
        let newcomerHash = try PasswordHash.make(password: Array("newcomer-password".utf8)).description
        let readerHash = try PasswordHash.make(password: Array((Self.passwords["reader"] ?? "").utf8)).description
        let node = try #require(cluster.child(1))
        try await offload {
            let app = try RawConnection(port: port), reader = try RawConnection(port: port)
            defer { app.close(); reader.close() }
            #expect(try app.roundTrip("AUTH app \(Self.passwords["app"] ?? "")\r\n") == .simple("OK"))
            #expect(try reader.roundTrip("AUTH reader \(Self.passwords["reader"] ?? "")\r\n") == .simple("OK"))
            #expect(try reader.roundTrip("SET app:x 1\r\n").isError(startingWith: "NOPERM"))

            // app removed, reader may write now, a newcomer added.
            try writeFile(usersPath, "user reader \(readerHash) +read +write ~*\nuser newcomer \(newcomerHash) +read ~*\n")
            node.signal(SIGHUP)
            try waitForLog(logPath, "users reloaded on SIGHUP")
            #expect(try app.roundTrip("GET app:x\r\n") == .error("NOAUTH Authentication required."))
            #expect(try reader.roundTrip("SET app:x 2\r\n") == .simple("OK"))
            let newcomer = try RawConnection(port: port)
            defer { newcomer.close() }
            #expect(try newcomer.roundTrip("AUTH newcomer newcomer-password\r\n") == .simple("OK"))

            // A broken file leaves the users in place.
            try writeFile(usersPath, "user reader not-a-hash +all ~*\n")
            node.signal(SIGHUP)
            try waitForLog(logPath, "users not reloaded on SIGHUP")
            #expect(try reader.roundTrip("SET app:x 3\r\n") == .simple("OK"))
            #expect(try newcomer.roundTrip("GET app:x\r\n") == .bulk(Array("3".utf8)))
        }
    }

    /// Waits (blocking, up to 10 s) until the log at `path` contains `text`.
    func waitForLog(_ path: String, _ text: String) throws {
        for _ in 0..<200 {
            if readFile(path).contains(text) { return }
            usleep(50_000)
        }
        throw TestFailure("no '\(text)' in \(path)")
    }

    @Test("a cluster secret: members prove it and work; a node with another secret is never let in, and both sides log why")
    func peerSecret() async throws {
        let settings: KeyValuePairs<String, String> = [
            "heartbeat-ms": "25", "election-timeout-ms": "250", "request-timeout-ms": "5000", "peer-secret-file": "secret",
        ]
        let cluster = try Cluster(size: 3, settings: settings, joiners: 1)
        defer { cluster.shutdown() }
        try writeFile(cluster.directory + "/secret", "the-members-share-this-secret-0123456789\n")
        try writeFile(cluster.directory + "/intruder-secret", "an-intruder-guessed-this-other-secret-987\n")
        // The joiner's configuration names another secret file.
        let join = readFile(cluster.joinConfigPath).replacingOccurrences(of: "peer-secret-file secret", with: "peer-secret-file intruder-secret")
        try writeFile(cluster.joinConfigPath, join)
        try cluster.startAll()
        let leader = try await cluster.waitForLeader()
        #expect(readFile(cluster.node(leader).logPath).contains("cluster secret proved"))
        #expect(try await cluster.kvctl(["put", "k", "v1"]).status == 0)

        try cluster.startJoining(4)
        let four = cluster.node(4)
        let add = try await cluster.kvctl(["member", "add", "4", "--peer", "127.0.0.1:\(four.peerPort)", "--client", "127.0.0.1:\(four.clientPort)"])
        #expect(add.status == 0, "\(add)")
        try await eventually("both sides to log the refused secret", timeout: .seconds(20), diagnostics: { cluster.diagnostics() }) {
            readFile(four.logPath).contains("another cluster secret")
                && cluster.ids.contains { readFile(cluster.node($0).logPath).contains("another cluster secret") }
        }
        // The cluster keeps working; the intruder never catches up, so it is never promoted.
        #expect(try await cluster.kvctl(["put", "k", "v2"]).status == 0)
        let promote = try await cluster.kvctl(["member", "promote", "4"])
        #expect(promote.status != 0 && promote.stderr.contains("has not caught up"), "\(promote)")
        #expect(!readFile(four.logPath).contains("snapshot installed"), "node 4 received no state")
        #expect(!readFile(four.logPath).contains("the-members-share"), "the secret is never logged")
    }

    /// The TLS fixtures (scripts/make-test-certs.sh).
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tls").path

    @Test("TLS: kvctl and redis-cli run the walkthrough over TLS with client certificates; plain text, no certificate or an unknown CA are refused")
    func tls() async throws {
        let f = Self.fixtures
        let settings: KeyValuePairs<String, String> = [
            "heartbeat-ms": "25", "election-timeout-ms": "250", "request-timeout-ms": "5000",
            "tls-cert-file": "\(f)/server.pem", "tls-key-file": "\(f)/server.key", "tls-ca-file": "\(f)/ca.pem",
            "tls-client-certs": "required",
        ]
        let cluster = try Cluster(size: 3, settings: settings, tls: true)
        defer { cluster.shutdown() }
        try cluster.startAll()
        let leader = try await cluster.waitForLeader()
        let tlsFlags = ["--tls", "--cacert", "\(f)/ca.pem", "--cert", "\(f)/client.pem", "--key", "\(f)/client.key"]

        // kvctl, through every node's client-tls= address (redirects name TLS addresses).
        let put = try await cluster.kvctl(tlsFlags + ["put", "greeting", "hello"])
        #expect(put.status == 0, "\(put)")
        let get = try await cluster.kvctl(tlsFlags + ["get", "greeting"])
        #expect(get.output == "hello", "\(get)")
        let lock = try await cluster.kvctl(tlsFlags + ["lock", "deploy", "--", "true"])
        #expect(lock.status == 0, "\(lock)")
        let status = try await cluster.kvctl(tlsFlags + ["status"])
        #expect(status.status == 0 && status.output.contains("leader"), "\(status)")

        // redis-cli over TLS at a follower: it forwards the write.
        let follower = cluster.ids.first { $0 != leader } ?? 1
        let tlsPort = String(cluster.node(follower).tlsPort ?? 0)
        let cli = try Tools.redisCLI()
        let redisTLS = ["--tls", "--cacert", "\(f)/ca.pem", "--cert", "\(f)/client.pem", "--key", "\(f)/client.key", "-p", tlsPort]
        let set = try await runCommand(cli, redisTLS + ["SET", "via", "tls"])
        #expect(set.output == "OK", "\(set)")
        let read = try await runCommand(cli, redisTLS + ["GET", "greeting"])
        #expect(read.output == "hello", "\(read)")

        // Refused: no client certificate, a server checked against the wrong CA, plain text.
        let noCertificate = try await runCommand(cli, ["--tls", "--cacert", "\(f)/ca.pem", "-p", tlsPort, "GET", "greeting"])
        #expect(noCertificate.output != "hello", "\(noCertificate)")
        let wrongCA = try await cluster.kvctl(["--tls", "--cacert", "\(f)/client.pem", "--cert", "\(f)/client.pem", "--key", "\(f)/client.key", "get", "greeting", "--timeout", "2"])
        #expect(wrongCA.status != 0 && wrongCA.stderr.contains("TLS handshake failed"), "\(wrongCA)")
        let port = cluster.node(follower).tlsPort ?? 0
        let plain = try await Self.plainPing(port)
        #expect(plain != .simple("PONG"), "a plain-text client gets no answer on the TLS port: \(String(describing: plain))")
        // The plain port still works beside it (a migration keeps both).
        #expect(try await cluster.kvctl(["get", "greeting"]).output == "hello")
    }

    @Test("a TLS-only cluster: peers speak mutual TLS, clients only TLS; kvctl and redis-cli run the walkthrough; a peer certificate for another host never joins")
    func tlsOnly() async throws {
        let f = Self.fixtures
        let settings: KeyValuePairs<String, String> = [
            "heartbeat-ms": "25", "election-timeout-ms": "250", "request-timeout-ms": "5000",
            "tls-cert-file": "\(f)/server.pem", "tls-key-file": "\(f)/server.key",
            "peer-tls-cert-file": "\(f)/peer.pem", "peer-tls-key-file": "\(f)/peer.key", "peer-tls-ca-file": "\(f)/ca.pem",
        ]
        let cluster = try Cluster(size: 3, settings: settings, joiners: 1, tls: true, plainClients: false)
        defer { cluster.shutdown() }
        // The joiner's certificate is signed by the same CA but made for another host.
        let join = readFile(cluster.joinConfigPath).replacingOccurrences(of: "\(f)/peer.", with: "\(f)/peer-elsewhere.")
        try writeFile(cluster.joinConfigPath, join)
        try cluster.startAll()
        let tlsFlags = ["--tls", "--cacert", "\(f)/ca.pem"]

        // The walkthrough with kvctl: a write once a leader is elected (over mutual TLS), a read,
        // a lock, the status of every node.
        try await eventually("a write through kvctl over TLS", timeout: .seconds(20), diagnostics: { cluster.diagnostics() }) {
            (try? await cluster.kvctl(tlsFlags + ["put", "greeting", "hello", "--timeout", "2"]).status) == 0
        }
        #expect(try await cluster.kvctl(tlsFlags + ["get", "greeting"]).output == "hello")
        let lock = try await cluster.kvctl(tlsFlags + ["lock", "deploy", "--", "true"])
        #expect(lock.status == 0, "\(lock)")
        let status = try await cluster.kvctl(tlsFlags + ["status"])
        #expect(status.status == 0 && status.output.contains("leader"), "\(status)")
        let bench = try await cluster.kvctl(tlsFlags + ["bench", "put", "--clients", "4", "--requests", "200", "--warmup", "0"])
        #expect(bench.status == 0 && bench.output.contains("p99"), "\(bench)")
        for id in cluster.ids {
            #expect(readFile(cluster.node(id).logPath).contains("mutual TLS"), "node \(id) logs its peers' TLS")
            #expect(!readFile(cluster.node(id).logPath).contains("serving clients\""), "no plain client listener")
        }

        // redis-cli at every node (followers forward writes over peer TLS).
        let cli = try Tools.redisCLI()
        for id in cluster.ids {
            let port = String(cluster.node(id).tlsPort ?? 0)
            let set = try await runCommand(cli, ["--tls", "--cacert", "\(f)/ca.pem", "-p", port, "SET", "via-\(id)", "tls"])
            #expect(set.output == "OK", "\(set)")
            let get = try await runCommand(cli, ["--tls", "--cacert", "\(f)/ca.pem", "-p", port, "GET", "greeting"])
            #expect(get.output == "hello", "\(get)")
        }

        // Plain text: kvctl says what to give; a raw client gets no answer.
        let plainKvctl = try await cluster.kvctl(["get", "greeting"])
        #expect(plainKvctl.status == 64 && plainKvctl.stderr.contains("serves clients over TLS only"), "\(plainKvctl)")
        let port = cluster.node(1).tlsPort ?? 0
        let plain = try await Self.plainPing(port)
        #expect(plain != .simple("PONG"), "\(String(describing: plain))")

        // A joiner whose certificate names another host is added but never let in.
        try cluster.startJoining(4)
        let four = cluster.node(4)
        let add = try await cluster.kvctl(
            tlsFlags + ["member", "add", "4", "--peer", "127.0.0.1:\(four.peerPort)", "--client", "127.0.0.1:\(four.tlsPort ?? 0)"])
        #expect(add.status == 0, "\(add)")
        try await eventually("both sides to log the certificate for another host", timeout: .seconds(20), diagnostics: { cluster.diagnostics() }) {
            readFile(four.logPath).contains("does not name its peer host 127.0.0.1")
                && cluster.ids.contains { readFile(cluster.node($0).logPath).contains("does not name its peer host 127.0.0.1") }
        }
        #expect(try await cluster.kvctl(tlsFlags + ["put", "k", "still-serving"]).status == 0)
        let promote = try await cluster.kvctl(tlsFlags + ["member", "promote", "4"])
        #expect(promote.status != 0 && promote.stderr.contains("has not caught up"), "\(promote)")
        #expect(!readFile(four.logPath).contains("snapshot installed"), "node 4 received no state")
    }
}

extension Reply {
    func isError(startingWith prefix: String) -> Bool {
        if case .error(let line) = self { return line.hasPrefix(prefix) }
        return false
    }
}
