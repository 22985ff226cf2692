import HookHost
import HostModules
import MoonbaseJSON
import MoonbaseModel
import RecordStore
import Synchronization

/// The write paths: before-hooks (outside any database lock), then the write with its event and
/// deliveries in one transaction, then the deliveries to the after-hooks (SPEC sections 5 and 6).
struct RecordWrites: RecordWriting {
    let store: any RecordStore
    let hooks: HookGenerations
    let deliveries: DeliveryScheduler
    let afterHooksEnabled: Bool
    /// How long a response waits at most for `async = false` handlers.
    let syncLimit: Duration
    /// How often an update or delete is tried again when the record changed while hooks ran.
    static let conflictRetries = 5
    /// The after-handlers' targets per event type and collection, for the current generation.
    private let targets = TargetsCache()

    /// `depth` counts the hook-made writes that led to this one (0: a request from outside).
    func create(collection: String, body: JSONObject, depth: Int = 0) async throws -> Record {
        guard try await store.collectionExists(collection) else { throw StoreError.collectionNotFound(collection) }
        var record = Record.new(collection: collection, fields: body)
        var eventID = WriteEventID()
        if let outcome = await runBefore(.created, collection: collection, {
            makeEvent(eventID.value(), .created, record, data: record.json, depth: depth)
        }) {
            record = record.withFields(try decide(outcome))
        }
        let outbox = outbox(&eventID, .created, collection, depth: depth) { (record.json, nil) }
        return try await waitingForSyncHandlers(outbox) { try await store.insert(record, outbox: outbox) }
    }

    func update(collection: String, id: String, patch: JSONObject, depth: Int = 0) async throws -> Record {
        var eventID = WriteEventID()
        return try await retryingConflicts {
            let old = try await store.record(collection: collection, id: id)
            var fields = old.fields
            fields.merge(Record.droppingSystemFields(patch))
            let proposed = fields
            if let outcome = await runBefore(.updated, collection: collection, {
                makeEvent(eventID.value(), .updated, old, data: old.withFields(proposed).json, oldData: old.json, depth: depth)
            }) {
                fields = try decide(outcome)
            }
            let outbox = outbox(&eventID, .updated, collection, depth: depth) { (old.withFields(fields).json, old.json) }
            return try await waitingForSyncHandlers(outbox) {
                try await store.replace(collection: collection, id: id, fields: fields, ifVersion: old.version, outbox: outbox)
            }
        }
    }

    func delete(collection: String, id: String, depth: Int = 0) async throws {
        var eventID = WriteEventID()
        _ = try await retryingConflicts {
            let old = try await store.record(collection: collection, id: id)
            if let outcome = await runBefore(.deleted, collection: collection, {
                makeEvent(eventID.value(), .deleted, old, data: old.json, oldData: old.json, depth: depth)
            }) {
                _ = try decide(outcome)
            }
            let outbox = outbox(&eventID, .deleted, collection, depth: depth) { (old.json, old.json) }
            return try await waitingForSyncHandlers(outbox) {
                try await store.delete(collection: collection, id: id, ifVersion: old.version, outbox: outbox)
            }
        }
    }

    /// The event and one delivery per after-handler that wants the write, to be written with the
    /// record; nil when none does. `eventID` is the one the write's before-hooks saw (SPEC
    /// section 6: one write, one id). `data` gives the event's `data` and `old_data`, asked for
    /// only when some handler has a `when` or `changed`.
    private func outbox(_ eventID: inout WriteEventID, _ type: RecordEventType, _ collection: String, depth: Int,
                        data: () -> (JSONObject, JSONObject?)) -> OutboxRequest? {
        guard afterHooksEnabled else { return nil }
        guard let targets = targets.targets(type, collection, of: hooks.current, data: data) else { return nil }
        return OutboxRequest(eventID: eventID.value(), targets: targets, depth: depth)
    }

    /// Runs the write; its event reaches the scheduler from the store, in commit order. When
    /// some matching handler has `async = false`, returns only once those have run (at most
    /// `syncLimit`), wherever they ran.
    private func waitingForSyncHandlers(_ outbox: OutboxRequest?, _ write: () async throws -> WriteResult) async throws -> Record {
        let latch = outbox.flatMap { deliveries.expectSync(eventID: $0.eventID, handlers: $0.targets) }
        let result: WriteResult
        do {
            result = try await write()
        } catch {
            if let outbox, latch != nil { deliveries.cancelSync(eventID: outbox.eventID, handlers: outbox.targets) }
            throw error
        }
        if let latch {
            if !result.deliveries.elsewhere.isEmpty { deliveries.follow(elsewhere: result.deliveries, for: syncLimit) }
            await latch.wait(atMost: syncLimit)
        }
        return result.record
    }

    /// Runs the before-handlers in the current generation (see `HookPool.runBefore`). A write no
    /// before-handler matches takes no lease.
    private func runBefore(_ type: RecordEventType, collection: String, _ makeEvent: () -> RecordEvent) async -> BeforeOutcome? {
        if hooks.catalog.match(.before, type, collection: collection).handlers.isEmpty { return nil }
        return await hooks.withCurrent { await $0.pool.runBefore(type, collection: collection, makeEvent) }
    }

    /// The data the before-hooks let through, or the error the client gets.
    private func decide(_ outcome: BeforeOutcome) throws -> JSONObject {
        switch outcome {
        case .proceed(let data): return Record.droppingSystemFields(data)
        case .rejected(let message, let status): throw WriteRefusal(status: status, message: message)
        case .failed(let detail): throw WriteRefusal(status: 500, message: "hook failed", detail: detail)
        }
    }

    /// The event before-hooks see: the write as it would be.
    private func makeEvent(_ eventID: String, _ type: RecordEventType, _ record: Record, data: JSONObject, oldData: JSONObject? = nil,
                           depth: Int) -> RecordEvent {
        RecordEvent(id: eventID, type: type, collection: record.collection, recordID: record.id, data: data, oldData: oldData,
                    timestamp: type == .deleted ? Timestamp.now() : record.updated, depth: depth)
    }

    /// Runs `body` again when the record changed between the read and the write (hooks ran in between).
    private func retryingConflicts(_ body: () async throws -> Record) async throws -> Record {
        for _ in 1..<Self.conflictRetries {
            do {
                return try await body()
            } catch StoreError.versionConflict {
                continue
            }
        }
        return try await body()
    }
}

/// `DeliveryTargets` per (event type, collection), built on first use in each generation (a
/// reload starts the cache afresh). Where some handler has
/// a `when` or `changed`, the targets depend on the data: each subset of handlers that wanted a
/// write has its targets built once too (keyed by catalog indices, so one table serves every
/// type and collection; past `maxSubsets` entries, further subsets are built per write).
private final class TargetsCache: Sendable {
    private struct Key: Hashable {
        var type: RecordEventType
        var collection: String
    }

    /// The after-handlers of one type and collection.
    private enum Entry {
        /// No handler has a condition: the same targets (nil: none) for every write.
        case fixed(DeliveryTargets?)
        /// The matching handlers, some with conditions.
        case conditional([Int])
    }

    static let maxSubsets = 512

    /// The generation the entries were built for, and the entries.
    private let cache = Mutex<(generation: Int, entries: [Key: Entry])>((0, [:]))
    private let subsets = Mutex<(generation: Int, entries: [[Int]: DeliveryTargets])>((0, [:]))

    func targets(_ type: RecordEventType, _ collection: String, of generation: HookGeneration,
                 data: () -> (JSONObject, JSONObject?)) -> DeliveryTargets? {
        let (number, catalog) = (generation.number, generation.catalog)
        let key = Key(type: type, collection: collection)
        let entry: Entry
        if let known = cache.withLock({ $0.generation == number ? $0.entries[key] : nil }) {
            entry = known
        } else {
            let match = catalog.match(.after, type, collection: collection)
            entry = match.isConditional ? .conditional(match.handlers) : .fixed(Self.build(match.handlers, catalog))
            cache.withLock { cache in
                if cache.generation < number { cache = (number, [:]) }
                if cache.generation == number { cache.entries[key] = entry }
            }
        }
        switch entry {
        case .fixed(let targets):
            return targets
        case .conditional(let handlers):
            let (new, old) = data()
            let wanted = catalog.admitted(handlers, data: new, oldData: old)
            if let known = subsets.withLock({ $0.generation == number ? $0.entries[wanted] : nil }) { return known }
            let built = Self.build(wanted, catalog)
            if let built {
                subsets.withLock { subsets in
                    if subsets.generation < number { subsets = (number, [:]) }
                    if subsets.generation == number && subsets.entries.count < Self.maxSubsets { subsets.entries[wanted] = built }
                }
            }
            return built
        }
    }

    /// One target per handler; nil for none.
    private static func build(_ handlers: [Int], _ catalog: HookCatalog) -> DeliveryTargets? {
        handlers.isEmpty ? nil : DeliveryTargets(handlers.map { index in
            DeliveryTarget(handler: catalog.handlers[index].key, maxAttempts: catalog.handlers[index].retries + 1,
                           keepsCollectionOrder: catalog.handlers[index].order == .collection)
        })
    }
}

/// A write's event id, made on first use: its before-hooks and its outbox share it, and a write
/// that no hook sees makes none.
private struct WriteEventID {
    private var made: String?

    mutating func value() -> String {
        if let made { return made }
        let id = EventID.make()
        made = id
        return id
    }
}
