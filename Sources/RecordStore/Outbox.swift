import MoonbaseJSON
import MoonbaseModel

// The outbox: every record write may record its event, and one delivery per handler that must
// receive it, in the write's own transaction. A refused or rolled-back write therefore has no
// event, and a committed one always has its event and deliveries, even if the process dies right
// after the commit. The store knows nothing of hooks: a handler is an opaque key.

/// The outbox's limits and delivery ids.
enum Outbox {
    /// At most this many deliveries per event: delivery ids are `sequence * maxTargets + n`.
    static let maxTargets = 1000

    static func deliveryID(sequence: Int64, position: Int) -> Int64 {
        sequence * Int64(maxTargets) + Int64(position)
    }

    /// `request` if it asks for an event (it has targets), nil if not.
    /// - Throws: `database` for more than `maxTargets` targets.
    static func eventRequest(_ request: OutboxRequest?) throws(StoreError) -> OutboxRequest? {
        guard let request, !request.targets.isEmpty else { return nil }
        guard request.targets.count <= maxTargets else {
            throw .database("an event can have at most \(maxTargets) deliveries, not \(request.targets.count)")
        }
        return request
    }
}

/// Where an event must be delivered: one delivery per handler.
public struct DeliveryTarget: Sendable, Equatable {
    /// Opaque key naming the handler (the server's business).
    public var handler: String
    /// How many attempts the delivery gets in all (1 = no retry); values below 1 count as 1.
    public var maxAttempts: Int
    /// The handler's deliveries run in commit order per collection, not per record
    /// (`order = "collection"`): engines that hand deliveries to several nodes keep that order.
    public var keepsCollectionOrder: Bool

    public init(handler: String, maxAttempts: Int, keepsCollectionOrder: Bool = false) {
        self.handler = handler
        self.maxAttempts = maxAttempts
        self.keepsCollectionOrder = keepsCollectionOrder
    }
}

/// Targets prepared once, as the outbox stores them, for every write that has the same ones
/// (the after-handlers of one event type and collection): a write then pays nothing to list them.
public struct DeliveryTargets: Sendable {
    /// The targets in order, `maxAttempts` below 1 raised to 1.
    public let targets: [DeliveryTarget]
    /// `[[handler key, max attempts], …]`: the handler set an event's row refers to.
    let stored: String

    public init(_ targets: [DeliveryTarget]) {
        self.targets = targets.map {
            DeliveryTarget(handler: $0.handler, maxAttempts: max($0.maxAttempts, 1), keepsCollectionOrder: $0.keepsCollectionOrder)
        }
        stored = JSONValue.array(self.targets.map { .array([.string($0.handler), .int(Int64($0.maxAttempts))]) }).serializedString()
    }
}

/// Asks a write to record its event in the same transaction.
public struct OutboxRequest: Sendable {
    /// The event's id, unique among stored events (an idempotency key for handlers).
    public var eventID: String
    /// One delivery per target, at most `Outbox.maxTargets`. No targets: the write records no event.
    public var deliveryTargets: DeliveryTargets
    /// How many writes made by handlers led to this one (0: a write from outside); kept with
    /// the event, so a limit on it holds across restarts.
    public var depth: Int

    public init(eventID: String, targets: DeliveryTargets, depth: Int = 0) {
        self.eventID = eventID
        self.deliveryTargets = targets
        self.depth = depth
    }

    public init(eventID: String, targets: [DeliveryTarget], depth: Int = 0) {
        self.init(eventID: eventID, targets: DeliveryTargets(targets), depth: depth)
    }

    /// The targets, `maxAttempts` below 1 raised to 1.
    public var targets: [DeliveryTarget] { deliveryTargets.targets }
}

/// A committed write's event as the outbox keeps it: the event its handlers receive, and its
/// place in commit order. Its fields read through (`stored.id`, `stored.collection`, …).
@dynamicMemberLookup
public struct OutboxEvent: Sendable, Equatable {
    /// Commit order: grows with every event stored (gaps are possible, reuse is not).
    public var sequence: Int64
    /// The event as written, with the `id` and `depth` of its `OutboxRequest`; `data` is the
    /// stored record (for a delete, as it was). Its `attempt` and `redelivered` belong to a
    /// delivery, so here they are 1 and false.
    public var event: RecordEvent

    public init(sequence: Int64, event: RecordEvent) {
        self.sequence = sequence
        self.event = event
    }

    public subscript<Value>(dynamicMember field: KeyPath<RecordEvent, Value>) -> Value {
        event[keyPath: field]
    }
}

/// Where a delivery stands.
///
/// `pending` (not tried yet, or taken back after a crash or a requeue) → `running` →
/// `succeeded`, `failed` (will be tried again at `nextAttemptAt`) or `dead` (no attempt left).
/// The store never records `running`: an attempt under way is known only to whoever runs it, and
/// stays `pending` in the store until its outcome is recorded.
public enum DeliveryStatus: String, Sendable, CaseIterable {
    case pending, running, succeeded, failed, dead
}

/// One (event, handler) pair and how its delivery is going.
public struct Delivery: Sendable, Equatable {
    /// `eventSequence * 1000 + n` for the event's n-th target: stable from the write on.
    public var id: Int64
    public var eventSequence: Int64
    public var eventID: String
    public var handler: String
    public var collection: String
    public var recordID: String
    public var status: DeliveryStatus
    /// Attempts made so far.
    public var attempts: Int
    public var maxAttempts: Int
    /// Milliseconds since 1970: when a failed delivery is due again.
    public var nextAttemptAt: Int64?
    /// The error of the last failed attempt; nil once an attempt succeeded.
    public var lastError: String?
    public var created: String
    public var updated: String
    /// Sent again by hand although a later delivery of its record to its handler had succeeded.
    public var redelivered: Bool

    public init(id: Int64, eventSequence: Int64, eventID: String, handler: String, collection: String,
                recordID: String, status: DeliveryStatus, attempts: Int, maxAttempts: Int, nextAttemptAt: Int64?,
                lastError: String?, created: String, updated: String, redelivered: Bool = false) {
        self.id = id
        self.eventSequence = eventSequence
        self.eventID = eventID
        self.handler = handler
        self.collection = collection
        self.recordID = recordID
        self.status = status
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
        self.created = created
        self.updated = updated
        self.redelivered = redelivered
    }

    /// `{"id","event_id","handler","collection","record_id","status","attempts","max_attempts",
    /// "next_attempt_at","last_error","created","updated","redelivered"}`; `next_attempt_at` is
    /// ISO-8601 or null.
    public var json: JSONObject {
        JSONObject([
            ("id", .int(id)),
            ("event_id", .string(eventID)),
            ("handler", .string(handler)),
            ("collection", .string(collection)),
            ("record_id", .string(recordID)),
            ("status", .string(status.rawValue)),
            ("attempts", .int(Int64(attempts))),
            ("max_attempts", .int(Int64(maxAttempts))),
            ("next_attempt_at", nextAttemptAt.map { .string(Timestamp.format(millisecondsSince1970: $0)) } ?? .null),
            ("last_error", lastError.map { .string($0) } ?? .null),
            ("created", .string(created)),
            ("updated", .string(updated)),
            ("redelivered", .bool(redelivered)),
        ])
    }
}

/// The deliveries a committed write stored, one per target, all pending. Each `Delivery` is
/// made on demand from the targets: the delivery path needs only the targets and ids.
public struct NewDeliveries: RandomAccessCollection, Sendable {
    public let eventSequence: Int64
    public let eventID: String
    public let collection: String
    public let recordID: String
    /// In target order, `maxAttempts` below 1 raised to 1.
    public let targets: [DeliveryTarget]
    /// The deliveries' `created` and `updated`.
    public let created: String
    /// Positions of the deliveries this node did not claim (on an engine shared by several
    /// nodes, see `DeliveryClaims`): an earlier delivery of their lane was held by another node,
    /// so whichever node claims them later runs them. Empty on an engine with one node.
    public let elsewhere: [Int]

    /// No deliveries (a write without an event).
    static let none = NewDeliveries(eventSequence: 0, eventID: "", collection: "", recordID: "", targets: [], created: "")

    init(eventSequence: Int64, eventID: String, collection: String, recordID: String, targets: [DeliveryTarget], created: String,
         elsewhere: [Int] = []) {
        self.eventSequence = eventSequence
        self.eventID = eventID
        self.collection = collection
        self.recordID = recordID
        self.targets = targets
        self.created = created
        self.elsewhere = elsewhere
    }

    /// Whether this node runs the delivery at `position` (it claimed it with the write).
    public func isHere(_ position: Int) -> Bool {
        elsewhere.isEmpty || !elsewhere.contains(position)
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { targets.count }

    /// The id of the delivery to the target at `position`.
    public func id(at position: Int) -> Int64 {
        Outbox.deliveryID(sequence: eventSequence, position: position)
    }

    public subscript(position: Int) -> Delivery {
        Delivery(id: id(at: position), eventSequence: eventSequence, eventID: eventID, handler: targets[position].handler,
                 collection: collection, recordID: recordID, status: .pending, attempts: 0,
                 maxAttempts: targets[position].maxAttempts, nextAttemptAt: nil, lastError: nil, created: created, updated: created)
    }
}

/// One attempt at a delivery, from the deliveries log.
public struct DeliveryAttempt: Sendable, Equatable {
    public var deliveryID: Int64
    public var eventID: String
    public var handler: String
    /// 1-based.
    public var attempt: Int
    public var succeeded: Bool
    public var started: String
    public var durationMilliseconds: Double
    public var error: String?

    public init(deliveryID: Int64, eventID: String, handler: String, attempt: Int, succeeded: Bool,
                started: String, durationMilliseconds: Double, error: String?) {
        self.deliveryID = deliveryID
        self.eventID = eventID
        self.handler = handler
        self.attempt = attempt
        self.succeeded = succeeded
        self.started = started
        self.durationMilliseconds = durationMilliseconds
        self.error = error
    }

    /// `{"delivery_id","event_id","handler","attempt","status":"succeeded"|"failed","started",
    /// "duration_ms","error"}`.
    public var json: JSONObject {
        JSONObject([
            ("delivery_id", .int(deliveryID)),
            ("event_id", .string(eventID)),
            ("handler", .string(handler)),
            ("attempt", .int(Int64(attempt))),
            ("status", .string(succeeded ? "succeeded" : "failed")),
            ("started", .string(started)),
            ("duration_ms", .double(durationMilliseconds)),
            ("error", error.map { .string($0) } ?? .null),
        ])
    }
}

/// The result of one attempt, recorded with `recordAttempts`.
public struct AttemptOutcome: Sendable, Equatable {
    public var deliveryID: Int64
    /// 1-based; becomes the delivery's `attempts`.
    public var attempt: Int
    public var started: String
    public var durationMilliseconds: Double
    /// nil = succeeded.
    public var error: String?
    /// The delivery's new status: succeeded, failed (will retry) or dead.
    public var status: DeliveryStatus
    /// For failed: when the next attempt is due (ms since 1970). Stored as given.
    public var nextAttemptAt: Int64?

    public init(deliveryID: Int64, attempt: Int, started: String, durationMilliseconds: Double, error: String?,
                status: DeliveryStatus, nextAttemptAt: Int64?) {
        self.deliveryID = deliveryID
        self.attempt = attempt
        self.started = started
        self.durationMilliseconds = durationMilliseconds
        self.error = error
        self.status = status
        self.nextAttemptAt = nextAttemptAt
    }
}

/// Which deliveries `deliveries(_:)` lists; nil matches anything.
public struct DeliveryFilter: Sendable, Equatable {
    public var status: DeliveryStatus?
    public var handler: String?
    public var collection: String?
    /// At most this many, clamped to 1...1000 when used.
    public var limit: Int

    public init(status: DeliveryStatus? = nil, handler: String? = nil, collection: String? = nil, limit: Int = 100) {
        self.status = status
        self.handler = handler
        self.collection = collection
        self.limit = limit
    }
}
