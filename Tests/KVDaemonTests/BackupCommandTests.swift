import Testing

@testable import KVDaemon

/// `SNAPSHOT BEGIN|CHUNK|END` parsing (docs/PROTOCOL.md, "Backups").
@Suite struct BackupCommandTests {
    static func parse(_ words: [String]) throws(CommandError) -> ClientCommand {
        try CommandParser.parse(words.map { Array($0.utf8) })
    }

    @Test func parsesEachStep() throws {
        #expect(try Self.parse(["snapshot", "begin"]) == .backup(.begin))
        #expect(try Self.parse(["SNAPSHOT", "CHUNK", "3", "17"]) == .backup(.chunk(id: 3, sequence: 17)))
        #expect(try Self.parse(["SNAPSHOT", "END", "3"]) == .backup(.end(id: 3)))
        #expect(try !Self.parse(["SNAPSHOT", "BEGIN"]).isRead, "a backup is not a read a follower may serve")
    }

    @Test func refusesBadArguments() {
        for words in [["SNAPSHOT"], ["SNAPSHOT", "SAVE"], ["SNAPSHOT", "BEGIN", "x"], ["SNAPSHOT", "CHUNK", "1"], ["SNAPSHOT", "CHUNK", "a", "1"], ["SNAPSHOT", "END"]] {
            #expect(throws: CommandError.self, "\(words)") { try Self.parse(words) }
        }
    }
}
