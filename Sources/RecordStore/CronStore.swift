import MoonbaseJSON
import MoonbaseModel

/// Where the runs of cron hooks are kept (SPEC section 14): a slot is claimed in the store before
/// it runs, so a slot runs once however many nodes share the store, and each run is recorded
/// like a delivery (attempts, retries, dead).
///
/// A protocol of its own beside `RecordStore`, so that an engine adds cron storage without the
/// record protocol growing: the claim is a row per (name, slot) under a unique key, inserted in a
/// transaction, which any SQL engine can do. Knows nothing of Lua or schedules: a cron is a name,
/// a slot a number.
public protocol CronStore: Sendable {
    /// Notes the crons a server starts with and returns what is known of each. A name not known
    /// yet, or known with another schedule, starts its history at `now` (so a first start has no
    /// missed slot); others keep theirs.
    func startCrons(_ crons: [(name: String, schedule: String)], now: Int64) async throws(StoreError) -> [String: CronHistory]
    /// What is known of every cron, by name (the listing).
    func cronHistories() async throws(StoreError) -> [String: CronHistory]
    /// Claims a run and stores it pending, with the cron's `lastSlot` and `lastRun`. A run for a
    /// slot is stored once per (name, slot): nil when someone else claimed that slot. A run by
    /// hand (`slot` nil) is always stored.
    func claimCronRun(_ claim: CronClaim) async throws(StoreError) -> CronRun?
    /// Records finished attempts (as `RecordStore.recordAttempts`, with run ids as delivery ids),
    /// each with its attempt row, and the cron's `lastError`.
    func recordCronAttempts(_ outcomes: [AttemptOutcome]) async throws(StoreError)
    /// The runs not finished yet (pending, failed), oldest first: what start-up takes up again.
    func unfinishedCronRuns() async throws(StoreError) -> [CronRun]
    /// Runs matching `filter` (`handler` is the cron's name; a `collection` matches none),
    /// newest first, at most `filter.limit` (clamped to 1...1000).
    func cronRuns(_ filter: DeliveryFilter) async throws(StoreError) -> [CronRun]
    /// One run; nil if there is none with that id.
    func cronRun(id: Int64) async throws(StoreError) -> CronRun?
    /// Every attempt of a run, by attempt number.
    func cronAttempts(runID: Int64) async throws(StoreError) -> [DeliveryAttempt]
    /// A failed or dead run goes back to pending with one more attempt allowed.
    func requeueCronRun(id: Int64) async throws(StoreError) -> CronRequeue
    /// Deletes up to `batchSize` succeeded runs last updated before `cutoff` (ISO-8601), with
    /// their attempts, oldest first; returns how many.
    func purgeSucceededCronRuns(before cutoff: String, batchSize: Int) async throws(StoreError) -> Int
}

/// What the store knows of one cron.
public struct CronHistory: Sendable, Equatable {
    /// The schedule its history is for.
    public var schedule: String
    /// Milliseconds since 1970: when the store first saw the cron with this schedule. Slots
    /// before it were never missed.
    public var since: Int64
    /// The latest slot claimed, by any node.
    public var lastSlot: Int64?
    /// When its latest run was claimed (ISO-8601).
    public var lastRun: String?
    /// The error of its latest attempt; nil once one succeeded.
    public var lastError: String?

    public init(schedule: String, since: Int64, lastSlot: Int64?, lastRun: String?, lastError: String?) {
        self.schedule = schedule
        self.since = since
        self.lastSlot = lastSlot
        self.lastRun = lastRun
        self.lastError = lastError
    }
}

/// A run to claim.
public struct CronClaim: Sendable, Equatable {
    public var name: String
    /// The slot (milliseconds since 1970); nil for a run asked for by hand.
    public var slot: Int64?
    /// The run's event id.
    public var eventID: String
    /// ISO-8601: the slot, or when the run by hand was asked for.
    public var scheduledAt: String
    /// Attempts in all (1 = no retry); values below 1 count as 1.
    public var maxAttempts: Int
    /// ISO-8601: now.
    public var created: String

    public init(name: String, slot: Int64?, eventID: String, scheduledAt: String, maxAttempts: Int, created: String) {
        self.name = name
        self.slot = slot
        self.eventID = eventID
        self.scheduledAt = scheduledAt
        self.maxAttempts = maxAttempts
        self.created = created
    }
}

/// One run of a cron hook, as the deliveries log shows it (kind `cron`).
public struct CronRun: Sendable, Equatable {
    public var id: Int64
    public var name: String
    /// Nil for a run asked for by hand.
    public var slot: Int64?
    public var eventID: String
    public var scheduledAt: String
    public var status: DeliveryStatus
    public var attempts: Int
    public var maxAttempts: Int
    /// Milliseconds since 1970: when a failed run is due again.
    public var nextAttemptAt: Int64?
    public var lastError: String?
    /// When it was claimed.
    public var created: String
    public var updated: String

    public init(id: Int64, name: String, slot: Int64?, eventID: String, scheduledAt: String, status: DeliveryStatus, attempts: Int,
                maxAttempts: Int, nextAttemptAt: Int64?, lastError: String?, created: String, updated: String) {
        self.id = id
        self.name = name
        self.slot = slot
        self.eventID = eventID
        self.scheduledAt = scheduledAt
        self.status = status
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
        self.created = created
        self.updated = updated
    }

    /// How the deliveries log names a run: `cron-` and its id, apart from the record deliveries' numbers.
    public static let idPrefix = "cron-"

    /// The run in the deliveries log's shape: `kind` `cron`, `id` `cron-N`, `handler` the cron's
    /// name, no collection or record, and `scheduled_at` and `manual`.
    public var json: JSONObject {
        JSONObject([
            ("kind", "cron"),
            ("id", .string(Self.idPrefix + String(id))),
            ("event_id", .string(eventID)),
            ("handler", .string(name)),
            ("collection", .null),
            ("record_id", .null),
            ("status", .string(status.rawValue)),
            ("attempts", .int(Int64(attempts))),
            ("max_attempts", .int(Int64(maxAttempts))),
            ("next_attempt_at", nextAttemptAt.map { .string(Timestamp.format(millisecondsSince1970: $0)) } ?? .null),
            ("last_error", lastError.map { .string($0) } ?? .null),
            ("created", .string(created)),
            ("updated", .string(updated)),
            ("redelivered", false),
            ("scheduled_at", .string(scheduledAt)),
            ("manual", .bool(slot == nil)),
        ])
    }
}

/// What `CronStore.requeueCronRun` did.
public enum CronRequeue: Sendable, Equatable {
    case requeued(CronRun)
    case notFound
    /// Only failed or dead runs can run again.
    case notRetryable(DeliveryStatus)
}
