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

    @Test func readyWhenAMemberKnowsALeaderAndHasAppliedWhatIsCommitted() {
        let ready = Readiness(info: "node_id:2\r\nleader_id:1\r\ncommit_index:50\r\napplied_index:50\r\nvoters:1,2,3\r\nlearners:\r\n")
        #expect(ready.isReady)
        #expect(ready.json == #"{"ready":true}"#)
        let learner = Readiness(info: "node_id:4\r\nleader_id:1\r\ncommit_index:9\r\napplied_index:9\r\nvoters:1,2,3\r\nlearners:4\r\n")
        #expect(learner.isReady)
    }

    @Test func notReadyNamesEveryReason() {
        let lag = Readiness.applyLagMax + 1
        let info = "node_id:5\r\nleader_id:0\r\ncommit_index:\(lag)\r\napplied_index:0\r\nvoters:1,2,3\r\nlearners:\r\n"
        let verdict = Readiness(info: info)
        #expect(verdict.reasons == ["not a member of the cluster", "no leader known", "applying: \(lag) committed entries behind"])
        #expect(verdict.json.hasPrefix(#"{"ready":false,"reasons":["not a member of the cluster","#))
    }
}
