import DequeModule

/// A handler's one identity on the delivery path: its number in `DeliveryHandlers`, which also
/// knows its key and catalog position.
struct HandlerID: Hashable, Sendable {
    let number: Int
}

/// The record a lane is for (or, for handlers that keep collection order, the collection). Its
/// hash is computed once per event and shared by the lanes of all its handlers.
struct LaneRecord: Hashable, Sendable {
    let collection: String
    /// Empty for handlers whose deliveries keep collection order.
    let recordID: String
    private let hash: Int

    init(collection: String, recordID: String) {
        self.collection = collection
        self.recordID = recordID
        var hasher = Hasher()
        hasher.combine(collection)
        hasher.combine(recordID)
        hash = hasher.finalize()
    }

    func hash(into hasher: inout Hasher) { hasher.combine(hash) }

    static func == (a: LaneRecord, b: LaneRecord) -> Bool {
        a.hash == b.hash && a.recordID == b.recordID && a.collection == b.collection
    }
}

/// A lane: a record's (`handler` nil), or one handler's for one record.
struct LaneID: Hashable, Sendable {
    let record: LaneRecord
    let handler: HandlerID?
}

/// One delivery as the lanes track it.
struct LaneDelivery: Equatable, Sendable {
    let id: Int64
    let handler: HandlerID
    /// Attempts made so far.
    var attempts: Int
    let maxAttempts: Int
    /// When a failed delivery is due again (ms since 1970); nil: it may run now.
    var retryAt: Int64?
    /// A forced retry of stale data, which its handler is told of (the lanes only carry it).
    var redelivered = false

    /// Whether it is a first attempt, which may run with its event's others.
    var isFirst: Bool { attempts == 0 && retryAt == nil }
}

/// How one attempt went, as the lanes need to know it.
enum AttemptResult: Equatable, Sendable {
    case succeeded
    case failed
    /// The handler is not in the catalog (any more): it cannot run.
    case handlerGone
}

/// What becomes of a delivery after an attempt: the store records it before the lanes move on.
enum AttemptVerdict: Equatable, Sendable {
    case succeeded
    /// Failed; runs again at this time (ms since 1970).
    case retry(at: Int64)
    /// No attempt left (or nothing to run it with).
    case dead
}

/// Keeps deliveries in order (SPEC section 6): deliveries of one record to one handler run one
/// at a time, in commit order (of one collection, for a handler with `order = "collection"`), and
/// a failing one holds back that handler's later deliveries for the record until it succeeds or
/// is dead. A state machine and nothing else: no clock, no threads, no store. Time is passed in
/// (ms since 1970); inputs change the lanes and add to a list of actions for the caller to carry
/// out.
///
/// Two kinds of lanes keep that order. Each record has a lane of groups, the first attempts of
/// its events' deliveries in commit order: the head group runs all its handlers in one go (one
/// event table, one outcome write), which is the whole story while handlers succeed. A delivery
/// that fails, or is a retry, or finds an earlier delivery of its handler still unfinished when
/// its group reaches the head, leaves the group for a lane of its own handler and record, where
/// it runs alone behind that earlier one. Groups that are ready together share a job (one hand-off
/// to a worker, one store write). At most `maxRunning` groups are under way (run, outcome not yet
/// recorded) at any time: after a crash, at most those run twice.
///
/// A lane's head is its running, waiting (for its retry time) or ready group; it leaves when
/// `finished` is told how it went, so the next one cannot start before the outcome is recorded.
struct DeliveryLanes<Event> {
    /// Deliveries of one event that run together: in a record lane, its first attempts; in a
    /// handler lane, exactly one delivery.
    struct Group {
        let event: Event
        let lane: LaneID
        var deliveries: [LaneDelivery]

        /// The attempt the group's deliveries are at (1 in a record lane).
        var attempt: Int { deliveries[0].attempts + 1 }
    }

    /// Lane heads handed to a worker together.
    struct Job {
        let groups: [Group]
    }

    /// What the caller is to do after an input.
    enum Action {
        /// Run these deliveries, then tell `finished` how they went.
        case run(Job)
        /// Call `retryDue` for this delivery at this time (ms since 1970).
        case retryAt(deliveryID: Int64, Int64)
        /// The delivery (its `attempts` counting the last one) has no attempt left.
        case dead(LaneDelivery, Event)
    }

    /// Events one job takes at most: enough that a busy server pays one hand-off to a worker, and
    /// one store write for the outcomes, per many events; few enough that both workers get work.
    static var batchLimit: Int { 16 }

    private let maxRunning: Int
    /// Waits before the 1st, 2nd, … retry (ms); the last one repeats.
    private let retrySchedule: [Int64]
    /// The handlers with `order = "collection"`: usually none, so most events skip the split.
    /// A reload may change it; deliveries already in their lanes stay there.
    var collectionOrdered: Set<HandlerID>

    /// Every lane that has a group, in commit order from its head.
    private var lanes: [LaneID: Deque<Group>] = [:]
    /// How many of `lanes` are handler lanes: usually none, so heads need no look at their handlers.
    private var handlerLanes = 0
    /// Lanes whose head can start now, in the order they became ready.
    private var ready: Deque<LaneID> = []
    /// Handler lanes whose head waits for its retry time, by the head's delivery id.
    private var waiting: [Int64: LaneID] = [:]
    /// Groups started and not yet finished.
    private(set) var running = 0
    /// Groups in record lanes: the events held here (for the backlog's bound).
    private(set) var queuedGroups = 0

    init(maxRunning: Int, retrySchedule: [Int64], collectionOrdered: Set<HandlerID>) {
        self.maxRunning = max(1, maxRunning)
        self.retrySchedule = retrySchedule.isEmpty ? [0] : retrySchedule
        self.collectionOrdered = collectionOrdered
    }

    /// Nothing runs and nothing is ready (deliveries waiting for their retry time do not count).
    var isIdle: Bool { running == 0 && ready.isEmpty }

    // MARK: Inputs

    /// An event's deliveries (in target order, as committed or read back from the store) join
    /// the end of their record's lane: one group, or two when some handlers keep collection order.
    /// Commit order is the order of these calls.
    mutating func commit(_ event: Event, collection: String, recordID: String, _ deliveries: [LaneDelivery], now: Int64,
                         into actions: inout [Action]) {
        let record = LaneRecord(collection: collection, recordID: recordID)
        if collectionOrdered.isEmpty || !deliveries.contains(where: { collectionOrdered.contains($0.handler) }) {
            append(Group(event: event, lane: LaneID(record: record, handler: nil), deliveries: deliveries), now: now, into: &actions)
            return
        }
        let others = deliveries.filter { !collectionOrdered.contains($0.handler) }
        if !others.isEmpty {
            append(Group(event: event, lane: LaneID(record: record, handler: nil), deliveries: others), now: now, into: &actions)
        }
        let ordered = deliveries.filter { collectionOrdered.contains($0.handler) }
        let collectionLane = LaneID(record: LaneRecord(collection: collection, recordID: ""), handler: nil)
        append(Group(event: event, lane: collectionLane, deliveries: ordered), now: now, into: &actions)
    }

    /// Starts ready lane heads while fewer than `maxRunning` groups run, up to `batchLimit`
    /// groups a job. Call it after inputs: commits in a row then share jobs.
    mutating func start(into actions: inout [Action]) {
        while running < maxRunning && !ready.isEmpty {
            let count = Swift.min(maxRunning - running, Self.batchLimit, ready.count)
            var groups: [Group] = []
            groups.reserveCapacity(count)
            for _ in 0..<count {
                let lane = ready.removeFirst()
                groups.append(lanes[lane]![0])
            }
            running += count
            actions.append(.run(Job(groups: groups)))
        }
    }

    /// What each attempt of `job` (results in the order of its groups' deliveries) comes to:
    /// retried on the schedule while attempts are left, dead after the last one. The store
    /// records these, then `finished` moves the lanes on.
    func verdicts(_ job: Job, _ results: [AttemptResult], now: Int64) -> [AttemptVerdict] {
        var verdicts: [AttemptVerdict] = []
        verdicts.reserveCapacity(results.count)
        var position = 0
        for group in job.groups {
            for delivery in group.deliveries {
                let attempt = delivery.attempts + 1
                switch results[position] {
                case .succeeded:
                    verdicts.append(.succeeded)
                case .failed where attempt < delivery.maxAttempts:
                    verdicts.append(.retry(at: now + retrySchedule[Swift.min(attempt - 1, retrySchedule.count - 1)]))
                case .failed, .handlerGone:
                    verdicts.append(.dead)
                }
                position += 1
            }
        }
        return verdicts
    }

    /// `job`'s attempts are recorded as `verdicts` (from `verdicts`): a failed delivery waits
    /// for its retry at the head of its handler lane; each lane's next group becomes its head.
    mutating func finished(_ job: Job, _ verdicts: [AttemptVerdict], now: Int64, into actions: inout [Action]) {
        var position = 0
        for group in job.groups {
            var staysHead = false
            for delivery in group.deliveries {
                switch verdicts[position] {
                case .succeeded:
                    break
                case .retry(let at):
                    var failed = delivery
                    failed.attempts += 1
                    failed.retryAt = at
                    if group.lane.handler != nil { // alone in its lane: stays the head until its retry
                        lanes[group.lane]![0].deliveries[0] = failed
                        startAlone(group.lane, now: now, into: &actions)
                        staysHead = true
                    } else { // leaves the group for its handler lane (empty: the record lane held it back)
                        let lane = LaneID(record: group.lane.record, handler: delivery.handler)
                        append(alone: Group(event: group.event, lane: lane, deliveries: [failed]), now: now, into: &actions)
                    }
                case .dead:
                    var dead = delivery
                    dead.attempts += 1
                    actions.append(.dead(dead, group.event))
                }
                position += 1
            }
            if !staysHead { leaveHead(group.lane, now: now, into: &actions) }
        }
        running -= job.groups.count
    }

    /// A delivery's retry time has come (`now`): it is ready, unless it has run meanwhile.
    mutating func retryDue(_ deliveryID: Int64, now: Int64) {
        guard let lane = waiting[deliveryID], let due = lanes[lane]?.first?.deliveries[0].retryAt, due <= now else { return }
        waiting[deliveryID] = nil
        ready.append(lane)
    }

    /// The deliveries of `handlers` that wait for their retry time become ready now (their
    /// handlers are gone, so they end at once); returns their ids.
    mutating func wakeWaiting(of handlers: Set<HandlerID>) -> [Int64] {
        let woken = waiting.filter { $0.value.handler.map(handlers.contains) ?? false }
        for (id, lane) in woken {
            waiting[id] = nil
            ready.append(lane)
        }
        return Array(woken.keys)
    }

    /// A delivery put back to pending by hand: if it waits for its retry time, it runs now in
    /// its place at the head of its lane (not a second time) and this returns true. Otherwise
    /// it is not here, and the caller commits it again.
    mutating func requeue(_ delivery: LaneDelivery) -> Bool {
        guard let lane = waiting.removeValue(forKey: delivery.id) else { return false }
        lanes[lane]![0].deliveries[0] = delivery
        ready.append(lane)
        return true
    }

    // MARK: Lanes

    /// `group` joins the end of its record lane; it becomes the head of a lane that had none.
    private mutating func append(_ group: Group, now: Int64, into actions: inout [Action]) {
        queuedGroups += 1
        if lanes[group.lane, default: []].appendCounting(group) == 1 { reachedHead(group, now: now, into: &actions) }
    }

    /// A delivery joins the end of its handler lane; it starts if it is the head.
    private mutating func append(alone group: Group, now: Int64, into actions: inout [Action]) {
        if lanes[group.lane, default: []].appendCounting(group) == 1 {
            handlerLanes += 1
            startAlone(group.lane, now: now, into: &actions)
        }
    }

    /// `head` is new at the head of its record lane. Its deliveries that must run alone
    /// (retries, and those whose handler still has an earlier delivery for this record) go to
    /// their handler's lane; the rest are ready. A group left empty gives the lane to the next one
    /// at once.
    private mutating func reachedHead(_ head: Group, now: Int64, into actions: inout [Action]) {
        var head = head
        let lane = head.lane
        while true {
            if handlerLanes == 0 && head.deliveries.allSatisfy(\.isFirst) {
                ready.append(lane)
                return
            }
            var together: [LaneDelivery] = []
            for delivery in head.deliveries {
                let alone = LaneID(record: lane.record, handler: delivery.handler)
                if delivery.isFirst && lanes[alone] == nil {
                    together.append(delivery)
                } else {
                    append(alone: Group(event: head.event, lane: alone, deliveries: [delivery]), now: now, into: &actions)
                }
            }
            if !together.isEmpty {
                lanes[lane]![0].deliveries = together
                ready.append(lane)
                return
            }
            guard let next = removeHead(lane) else { return }
            head = next
        }
    }

    /// The head of handler lane `lane`: ready, or waiting for its retry time.
    private mutating func startAlone(_ lane: LaneID, now: Int64, into actions: inout [Action]) {
        let delivery = lanes[lane]![0].deliveries[0]
        if let due = delivery.retryAt, due > now {
            waiting[delivery.id] = lane
            actions.append(.retryAt(deliveryID: delivery.id, due))
        } else {
            ready.append(lane)
        }
    }

    /// The head of `lane` is done: the next group, if any, becomes the head.
    private mutating func leaveHead(_ lane: LaneID, now: Int64, into actions: inout [Action]) {
        guard let next = removeHead(lane) else { return }
        if lane.handler == nil {
            reachedHead(next, now: now, into: &actions)
        } else {
            startAlone(lane, now: now, into: &actions)
        }
    }

    /// Removes the head of `lane`; returns the next group, or nil once the lane is empty (and gone).
    private mutating func removeHead(_ lane: LaneID) -> Group? {
        let index = lanes.index(forKey: lane)!
        lanes.values[index].removeFirst()
        if lane.handler == nil { queuedGroups -= 1 }
        if let next = lanes.values[index].first { return next }
        lanes.remove(at: index)
        if lane.handler != nil { handlerLanes -= 1 }
        return nil
    }
}

private extension Deque {
    /// Appends and returns the new count, in one access through a dictionary's subscript.
    mutating func appendCounting(_ element: Element) -> Int {
        append(element)
        return count
    }
}

extension DeliveryLanes.Group: Sendable where Event: Sendable {}
extension DeliveryLanes.Job: Sendable where Event: Sendable {}
