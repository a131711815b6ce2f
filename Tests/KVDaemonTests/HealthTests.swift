import Testing

@testable import KVDaemon

/// `/health` reports every INFO field as JSON, including empty ones, and whether a leader is known.
@Suite struct HealthTests {
    @Test func everyFieldAndHasLeader() {
        let json = Daemon.healthJSON(info: "# kvd\r\nnode_id:1\r\nrole:leader\r\nleader_id:1\r\nleader_client:127.0.0.1:7001\r\nlearners:\r\n")
        #expect(json == #"{"has_leader":true,"node_id":1,"role":"leader","leader_id":1,"leader_client":"127.0.0.1:7001","learners":""}"#)
    }

    @Test func noLeaderAndEscaping() {
        let json = Daemon.healthJSON(info: "leader_id:0\r\ncluster_id:a\"b\\c\r\n")
        #expect(json == #"{"has_leader":false,"leader_id":0,"cluster_id":"a\"b\\c"}"#)
    }
}
