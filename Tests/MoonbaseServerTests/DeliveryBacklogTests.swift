@testable import MoonbaseServer
import Testing

/// `DeliveryBacklog`'s bookkeeping on its own: which events stay in the store, and which ones
/// coming back through the inbox are repeats.
@Suite struct DeliveryBacklogTests {
    /// A backlog that has read what the last run left and takes events in.
    func caughtUp(capacity: Int) -> DeliveryBacklog<Int> {
        let backlog = DeliveryBacklog<Int>(capacity: capacity)
        #expect(backlog.takeEventsAgain(readThrough: 0))
        return backlog
    }

    @Test func startsOutSpilledSoStartUpReadsTheStoreFirst() {
        let backlog = DeliveryBacklog<Int>(capacity: 10)
        #expect(backlog.accept(1, sequence: 1) == .leftInStore && backlog.spilledFrom == 0)
    }

    @Test func pastCapacityEventsStayInTheStoreFromTheFirstThatDoesNotFit() {
        let backlog = caughtUp(capacity: 2)
        #expect(backlog.accept(1, sequence: 1) == .drain)
        #expect(backlog.accept(2, sequence: 2) == .inbox, "one drain serves the events that arrive before it")
        #expect(backlog.accept(3, sequence: 3) == .spilled(held: 2))
        #expect(backlog.accept(4, sequence: 4) == .leftInStore, "later events stay behind it, in commit order")
        #expect(backlog.spilledFrom == 3 && backlog.peak == 2)
        #expect(backlog.takeInbox().map(\.element) == [1, 2])
    }

    @Test func refillsOnlyOnceHalfIsFreeCountingTheInbox() {
        let backlog = caughtUp(capacity: 4)
        backlog.report(queued: 3)
        #expect(backlog.roomToRefill == nil)
        backlog.report(queued: 2)
        #expect(backlog.roomToRefill == 2)
        _ = backlog.accept(1, sequence: 1)
        #expect(backlog.roomToRefill == nil, "an event on its way to the lanes takes room too")
    }

    @Test func eventsLeftInTheStoreAfterAReadLookedAreReadBeforeEventsAreTakenInAgain() {
        let backlog = caughtUp(capacity: 2)
        for sequence in 1...3 { _ = backlog.accept(sequence, sequence: Int64(sequence)) }
        #expect(backlog.spilledFrom == 3)
        _ = backlog.takeInbox()
        _ = backlog.accept(4, sequence: 4) // committed after a read that returned event 3 only
        #expect(!backlog.takeEventsAgain(readThrough: 3) && backlog.spilledFrom == 4)
        #expect(backlog.takeEventsAgain(readThrough: 5) && backlog.spilledFrom == nil, "a read that returned events 4 and 5")
        backlog.report(queued: 0)
        // Event 5 was committed before that read looked but reaches the inbox after it: a repeat.
        for sequence in 5...6 { _ = backlog.accept(sequence, sequence: Int64(sequence)) }
        #expect(backlog.takeInbox().map(\.element) == [6])
        #expect(backlog.peak == 2)
    }
}
