import Testing

@testable import kvctl

@Suite struct OpenLoopScheduleTests {
    @Test func dueTimesAreEvenlySpaced() {
        let schedule = OpenLoopSchedule(rate: 1000, start: 5_000_000_000, warmupSeconds: 0.5, stop: .duration(seconds: 2))
        #expect(schedule.intendedTime(of: 0) == 5_000_000_000)
        #expect(schedule.intendedTime(of: 1) == 5_001_000_000)
        #expect(schedule.intendedTime(of: 1500) == 6_500_000_000)
        #expect(schedule.warmupCount == 500)
        #expect(schedule.totalCount == 2500)
        #expect(!schedule.isMeasured(499) && schedule.isMeasured(500) && schedule.isMeasured(2499) && !schedule.isMeasured(2500))
        #expect(schedule.measureFrom == 5_500_000_000)
    }

    @Test func requestCountStop() {
        let schedule = OpenLoopSchedule(rate: 10, start: 0, warmupSeconds: 1, stop: .requests(7))
        #expect(schedule.warmupCount == 10)
        #expect(schedule.totalCount == 17)
    }

    @Test func workersShareEveryRequestOnce() {
        let schedule = OpenLoopSchedule(rate: 100, start: 0, warmupSeconds: 0, stop: .requests(103))
        let all = (0..<4).flatMap { Array(schedule.indexes(worker: $0, of: 4)) }.sorted()
        #expect(all == Array(0..<103))
    }

    /// One connection, 1 ms per request, 100 requests/s, and one request that takes a second: the
    /// requests due during the stall are charged their wait, as a user would see it.
    @Test func stallIsChargedToEveryRequestDueDuringIt() {
        let schedule = OpenLoopSchedule(rate: 100, start: 0, warmupSeconds: 0, stop: .duration(seconds: 3))
        let millisecond: UInt64 = 1_000_000
        var freeAt: UInt64 = 0
        var fromIntended: [UInt64] = []
        var fromSend: [UInt64] = []
        for index in schedule.indexes(worker: 0, of: 1) {
            let intended = schedule.intendedTime(of: index)
            let sent = OpenLoopSchedule.sendTime(intended: intended, freeAt: freeAt)
            let service = index == 50 ? 1000 * millisecond : millisecond
            let completed = sent + service
            freeAt = completed
            fromIntended.append(OpenLoopSchedule.latency(intended: intended, completed: completed))
            fromSend.append(completed - sent)
        }
        // Measured from the send, only the stalled request looks slow: coordinated omission.
        #expect(fromSend.filter { $0 > 10 * millisecond }.count == 1)
        // Measured from the due time, the requests due during the second (and while the backlog drains) are slow too,
        // decreasing from about 1 s to nothing as the backlog drains.
        let slow = fromIntended.filter { $0 > 10 * millisecond }
        #expect(slow.count >= 100 && slow.count <= 115)
        #expect(fromIntended[50] == 1000 * millisecond)
        #expect(fromIntended[51] > 990 * millisecond)
        #expect(fromIntended[51] > fromIntended[60] && fromIntended[60] > fromIntended[100])
        #expect(fromIntended.last == millisecond)
    }

    @Test func earlyCompletionIsZeroLatency() {
        #expect(OpenLoopSchedule.latency(intended: 10, completed: 5) == 0)
        #expect(OpenLoopSchedule.sendTime(intended: 10, freeAt: 5) == 10)
        #expect(OpenLoopSchedule.sendTime(intended: 10, freeAt: 50) == 50)
    }
}
