import KVProtocol
import Testing

/// `INFO` replies parse the same way for every reader (kvctl status, the daemon's /health).
@Suite struct InfoFieldsTests {
    @Test func crlfAndLFLinesHeadersAndEmptyValues() {
        let text = "# kvd\r\nnode_id:2\r\nrole:follower\r\nleader_client:127.0.0.1:7001\r\nlearners:\r\n\r\nvoters:1,2,3\n"
        let fields = InfoFields.parse(text)
        #expect(fields.map(\.name) == ["node_id", "role", "leader_client", "learners", "voters"])
        #expect(fields.map(\.value) == ["2", "follower", "127.0.0.1:7001", "", "1,2,3"])
        #expect(InfoFields.dictionary(text)["leader_client"] == "127.0.0.1:7001")
        #expect(InfoFields.dictionary(text)["learners"] == "")
    }

    @Test func linesWithoutAColonAreIgnored() {
        #expect(InfoFields.parse("garbage\r\nterm:4\r\n").map(\.name) == ["term"])
        #expect(InfoFields.parse("").isEmpty)
    }
}
