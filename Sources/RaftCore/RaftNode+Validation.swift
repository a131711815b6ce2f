/// Refuses messages no correct peer sends, before they can touch any state.
extension RaftNode {
    func validate(_ message: Message) throws(StepError) {
        guard message.to == id else { throw .invalidMessage("addressed to \(message.to), not \(id)") }
        guard message.from != id, message.from.rawValue != 0 else {
            throw .invalidMessage("bad sender \(message.from)")
        }
        switch message.body {
        case .appendEntries(let request):
            if message.term == currentTerm, isLeader {
                throw .invalidMessage("AppendEntries from \(message.from) in our own term \(currentTerm) while leading")
            }
            guard request.prevLogTerm <= message.term else { throw .invalidMessage("prevLogTerm beyond message term") }
            var expected = request.prevLogIndex.next
            var previousTerm = request.prevLogTerm
            for entry in request.entries {
                guard entry.index == expected else { throw .invalidMessage("entries not contiguous at \(entry.index)") }
                guard entry.term >= previousTerm, entry.term <= message.term else {
                    throw .invalidMessage("entry \(entry.index) has term \(entry.term) out of order")
                }
                expected = expected.next
                previousTerm = entry.term
            }
        case .installSnapshot(let request):
            if message.term == currentTerm, isLeader {
                throw .invalidMessage("InstallSnapshot from \(message.from) in our own term while leading")
            }
            guard request.offset >= 0, request.metadata.lastIncludedTerm <= message.term,
                request.metadata.lastIncludedIndex > .zero
            else { throw .invalidMessage("bad InstallSnapshot header") }
        case .installSnapshotResponse(let response):
            guard response.bytesReceived >= 0 else { throw .invalidMessage("negative snapshot offset") }
        case .requestVote, .requestVoteResponse, .appendEntriesResponse, .timeoutNow, .readIndexRequest,
            .readIndexResponse, .forwardedProposal, .forwardedProposalRefused:
            break
        }
    }
}
