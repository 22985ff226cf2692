import Logging
import RecordStore

/// The store's sink for committed events: made before the store, given to it at init, and read by
/// the scheduler. Events go into the backlog in commit order, on the store's writer; a wake-up
/// tells the scheduler's service loop to take them (one per drain, however many events wait).
final class CommittedEvents: CommittedEventSink {
    typealias Backlog = DeliveryBacklog<(OutboxEvent, NewDeliveries)>

    let backlog: Backlog
    /// One element per drain to schedule; the scheduler's `run` reads it until graceful shutdown.
    let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let logger: Logger

    /// At most `capacity` events wait in memory; later ones wait in the store only.
    init(capacity: Int, logger: Logger) {
        backlog = Backlog(capacity: capacity)
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self)
        self.logger = logger
    }

    func committed(_ event: OutboxEvent, _ deliveries: NewDeliveries) {
        if deliveries.elsewhere.count == deliveries.count { return } // all for other nodes to claim
        switch backlog.accept((event, deliveries), sequence: event.sequence) {
        case .drain:
            wake.yield()
        case .spilled(let held):
            logger.info("hook backlog full: later events wait in the store", metadata: [
                "backlog": .stringConvertible(held), "from_event": .stringConvertible(event.sequence),
            ])
        case .inbox, .leftInStore:
            break
        }
    }
}
