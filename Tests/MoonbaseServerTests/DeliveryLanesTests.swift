@testable import MoonbaseServer
import Testing

/// `DeliveryLanes` on its own: a clock moved by hand, jobs run by the test, no actor or thread.
@Suite struct DeliveryLanesTests {
    typealias Lanes = DeliveryLanes<String>

    /// The lanes and the time; jobs are described as "event/handler#attempt".
    struct Harness {
        var lanes: Lanes
        var now: Int64 = 1_800_000_000_000

        init(retrySchedule: [Int64] = [1_000, 60_000], collectionOrdered: Set<Int> = [], maxRunning: Int = 64) {
            lanes = Lanes(maxRunning: maxRunning, retrySchedule: retrySchedule,
                          collectionOrdered: Set(collectionOrdered.map { HandlerID(number: $0) }))
        }

        /// Event `event` of record `record` for `handlers` (numbers); delivery ids are event * 100 + handler.
        mutating func commit(_ event: Int, record: String, handlers: [Int], maxAttempts: Int = 3) {
            var actions: [Lanes.Action] = []
            let deliveries = handlers.map { LaneDelivery(id: Int64(event * 100 + $0), handler: HandlerID(number: $0), attempts: 0,
                                                         maxAttempts: maxAttempts, retryAt: nil) }
            lanes.commit("e\(event)", collection: "posts", recordID: record, deliveries, now: now, into: &actions)
            #expect(actions.isEmpty, "first attempts only join lanes")
        }

        /// The jobs that start now.
        mutating func start() -> [Lanes.Job] {
            var actions: [Lanes.Action] = []
            lanes.start(into: &actions)
            return actions.map { action in
                guard case .run(let job) = action else { Issue.record("not a job: \(action)"); return Lanes.Job(groups: []) }
                return job
            }
        }

        /// Records `job`'s attempts: those named in `failing` ("event/handler") failed, the others
        /// succeeded. Returns the retries and dead deliveries that follow, as "retry id at" and
        /// "dead id after n".
        mutating func finish(_ job: Lanes.Job, failing: Set<String> = [], gone: Set<String> = []) -> [String] {
            let results = job.groups.flatMap { group in
                group.deliveries.map { delivery -> AttemptResult in
                    let name = "\(group.event)/h\(delivery.handler.number)"
                    return gone.contains(name) ? .handlerGone : failing.contains(name) ? .failed : .succeeded
                }
            }
            var actions: [Lanes.Action] = []
            lanes.finished(job, lanes.verdicts(job, results, now: now), now: now, into: &actions)
            return actions.map { action in
                switch action {
                case .run: "run"
                case .retryAt(let id, let due): "retry \(id) at +\(due - now)"
                case .dead(let delivery, _): "dead \(delivery.id) after \(delivery.attempts)"
                }
            }
        }

        /// Runs the ready jobs one round, all succeeding; returns what ran.
        mutating func runRound() -> [[String]] {
            let jobs = start()
            for job in jobs { #expect(finish(job).isEmpty) }
            return jobs.map(Self.describe)
        }

        mutating func retryDue(_ id: Int64) {
            lanes.retryDue(id, now: now)
        }

        static func describe(_ job: Lanes.Job) -> [String] {
            job.groups.flatMap { group in group.deliveries.map { "\(group.event)/h\($0.handler.number)#\(group.attempt)" } }
        }
    }

    @Test func deliveriesOfOneRecordRunInCommitOrderAndOtherRecordsDoNotWait() {
        var lanes = Harness()
        for event in 1...3 { lanes.commit(event, record: "a", handlers: [0, 1]) }
        lanes.commit(4, record: "b", handlers: [0, 1])
        #expect(lanes.runRound() == [["e1/h0#1", "e1/h1#1", "e4/h0#1", "e4/h1#1"]], "the heads of both records share a job")
        #expect(lanes.runRound() == [["e2/h0#1", "e2/h1#1"]])
        #expect(lanes.runRound() == [["e3/h0#1", "e3/h1#1"]])
        #expect(lanes.runRound().isEmpty && lanes.lanes.isIdle && lanes.lanes.queuedGroups == 0)
    }

    @Test func aFailureHoldsBackOnlyItsHandlersLaneForTheRecord() throws {
        var lanes = Harness()
        lanes.commit(1, record: "a", handlers: [0, 1])
        let first = try #require(lanes.start().first)
        #expect(lanes.finish(first, failing: ["e1/h0"]) == ["retry 100 at +1000"])
        lanes.commit(2, record: "a", handlers: [0, 1])
        lanes.commit(3, record: "a", handlers: [0, 1])
        lanes.commit(4, record: "b", handlers: [0, 1])
        #expect(lanes.runRound() == [["e2/h1#1", "e4/h0#1", "e4/h1#1"]], "h0 for record a waits behind its failed delivery")
        #expect(lanes.runRound() == [["e3/h1#1"]])
        #expect(lanes.runRound().isEmpty)
        lanes.now += 1_000
        lanes.retryDue(100)
        #expect(lanes.runRound() == [["e1/h0#2"]])
        #expect(lanes.runRound() == [["e2/h0#1"]], "then its later deliveries, one at a time, in commit order")
        #expect(lanes.runRound() == [["e3/h0#1"]])
        lanes.commit(5, record: "a", handlers: [0, 1])
        #expect(lanes.runRound() == [["e5/h0#1", "e5/h1#1"]], "back together once the handler's lane is empty")
        #expect(lanes.lanes.isIdle && lanes.lanes.queuedGroups == 0)
    }

    @Test func retriesFollowTheScheduleAndNotBefore() throws {
        var lanes = Harness(retrySchedule: [1_000, 60_000])
        lanes.commit(1, record: "a", handlers: [0], maxAttempts: 4)
        let first = try #require(lanes.start().first)
        #expect(lanes.finish(first, failing: ["e1/h0"]) == ["retry 100 at +1000"])
        lanes.now += 999
        lanes.retryDue(100) // a timer that fired early
        #expect(lanes.start().isEmpty, "not before its time")
        lanes.now += 1
        lanes.retryDue(100)
        let second = try #require(lanes.start().first)
        #expect(Harness.describe(second) == ["e1/h0#2"])
        #expect(lanes.finish(second, failing: ["e1/h0"]) == ["retry 100 at +60000"])
        lanes.now += 60_000
        lanes.retryDue(100)
        let third = try #require(lanes.start().first)
        #expect(lanes.finish(third, failing: ["e1/h0"]) == ["retry 100 at +60000"], "the last wait repeats")
        lanes.now += 60_000
        lanes.retryDue(100)
        #expect(lanes.runRound() == [["e1/h0#4"]])
        #expect(lanes.lanes.isIdle)
    }

    @Test func aDeliveryIsDeadAfterItsLastAttemptAndReleasesItsLane() throws {
        var lanes = Harness(retrySchedule: [1_000])
        lanes.commit(1, record: "a", handlers: [0, 1], maxAttempts: 2)
        lanes.commit(2, record: "a", handlers: [0, 1], maxAttempts: 2)
        let first = try #require(lanes.start().first)
        #expect(lanes.finish(first, failing: ["e1/h0"], gone: ["e1/h1"]) == ["retry 100 at +1000", "dead 101 after 1"],
                "a handler no longer registered cannot run: dead at once")
        #expect(lanes.runRound() == [["e2/h1#1"]])
        lanes.now += 1_000
        lanes.retryDue(100)
        let second = try #require(lanes.start().first)
        #expect(lanes.finish(second, failing: ["e1/h0"]) == ["dead 100 after 2"])
        #expect(lanes.runRound() == [["e2/h0#1"]], "the next delivery of the handler runs once the dead one is out of the way")
        #expect(lanes.lanes.isIdle && lanes.lanes.queuedGroups == 0)
    }

    @Test func collectionOrderHoldsAcrossRecords() throws {
        var lanes = Harness(collectionOrdered: [0])
        lanes.commit(1, record: "a", handlers: [0, 1])
        lanes.commit(2, record: "b", handlers: [0, 1])
        lanes.commit(3, record: "c", handlers: [0, 1])
        let first = try #require(lanes.start().first)
        #expect(Harness.describe(first) == ["e1/h1#1", "e1/h0#1", "e2/h1#1", "e3/h1#1"],
                "h0 keeps one lane for the collection; the others one per record")
        #expect(lanes.finish(first, failing: ["e1/h0"]) == ["retry 100 at +1000"])
        #expect(lanes.runRound().isEmpty, "the other records wait behind the failed one")
        lanes.now += 1_000
        lanes.retryDue(100)
        #expect(lanes.runRound() == [["e1/h0#2"]])
        #expect(lanes.runRound() == [["e2/h0#1"]])
        #expect(lanes.runRound() == [["e3/h0#1"]])
        #expect(lanes.lanes.isIdle && lanes.lanes.queuedGroups == 0)
    }
}
