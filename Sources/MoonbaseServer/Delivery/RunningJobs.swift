import Synchronization

/// The jobs handed to the hook workers whose outcomes are not recorded yet, for the admin API,
/// which asks from any thread without waiting for the scheduler: a lock guards them. One entry
/// per job, so a busy server pays one insert and one removal per many events.
final class RunningJobs<Event: Sendable>: Sendable {
    private let jobs = Mutex<[Int: DeliveryLanes<Event>.Job]>([:])

    func add(_ job: DeliveryLanes<Event>.Job, number: Int) {
        jobs.withLock { $0[number] = job }
    }

    func remove(number: Int) {
        _ = jobs.withLock { $0.removeValue(forKey: number) }
    }

    /// The ids of the deliveries whose attempt is under way.
    var deliveryIDs: Set<Int64> {
        jobs.withLock { jobs in Set(jobs.values.lazy.flatMap(\.groups).flatMap(\.deliveries).map(\.id)) }
    }
}
