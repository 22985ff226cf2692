import Foundation
import GRDB
import Testing
import MoonbaseJSON
import MoonbaseModel
@testable import RecordStore

/// What durable after-hooks cost on disk: the same creates with ten after-handlers (every first
/// attempt succeeded, events kept as retention keeps them) and without, in bytes per record of
/// the database file after a WAL checkpoint.
@Suite("Outbox: disk per record")
struct OutboxDiskTests {
    /// The benchmark's record (Benchmarks/http-load.sh).
    static let fields: JSONObject = [
        "title": "Hello Moonbase", "slug": .null, "body": "A records backend with drop-in Lua hooks.", "author": "ada",
        "status": "published", "views": 1234, "likes": 56, "rating": 4.5, "score": 0.875, "published": true,
    ]
    /// Ten handler keys as the hook loader makes them (file:name:event:collection).
    static let targets = DeliveryTargets((1...10).map {
        let file = "hooks/noop_\($0 < 10 ? "0" : "")\($0).lua"
        return DeliveryTarget(handler: "\(file):anonymous@\(file):1:record.created:posts", maxAttempts: 1)
    })
    static let records = 20_000
    /// Writes in flight at once, as concurrent requests (they share transactions).
    static let concurrency = 32

    /// Bytes of the database file per record after `records` creates, with or without the ten
    /// handlers; with them, each batch's first attempts are recorded as succeeded, as the
    /// scheduler does, before the next batch is written. Also the time the writes and the
    /// successes took, per record (a rough figure: debug build, shared machine).
    static func bytesPerRecord(withHooks: Bool) async throws -> (bytes: Double, writing: Duration, succeeding: Duration) {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(directory: directory)
            _ = try await store.createCollection(name: "posts")
            let clock = ContinuousClock()
            var (writing, succeeding) = (Duration.zero, Duration.zero)
            for start in stride(from: 0, to: records, by: concurrency) {
                let writeStart = clock.now
                let written = try await withThrowingTaskGroup(of: WriteResult.self) { group in
                    for _ in start..<min(start + concurrency, records) {
                        group.addTask {
                            try await store.insert(Record.new(collection: "posts", fields: fields),
                                                   outbox: withHooks ? OutboxRequest(eventID: EventID.make(), targets: targets) : nil)
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                writing += clock.now - writeStart
                let started = Timestamp.now()
                let successStart = clock.now
                try await store.recordAttempts(written.flatMap(\.deliveries).map {
                    AttemptOutcome(deliveryID: $0.id, attempt: 1, started: started, durationMilliseconds: 0.042, error: nil,
                                   status: .succeeded, nextAttemptAt: nil)
                })
                succeeding += clock.now - successStart
            }
            #expect(try await store.unfinishedDeliveries().isEmpty)
            // The store's own checkpointer may be running one: SQLite then refuses at once.
            var checkpointed = false
            for _ in 0..<100 where !checkpointed {
                checkpointed = (try? await store.writer.writeWithoutTransaction { db in try db.checkpoint(.truncate) }) != nil
                if !checkpointed { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(checkpointed)
            let size = try #require(FileManager.default.attributesOfItem(atPath: directory + "/" + SQLiteStore.databaseFileName)[.size] as? Int)
            return (Double(size) / Double(records), writing / records, succeeding / records)
        }
    }

    static func µs(_ duration: Duration) -> String {
        String(format: "%.1f µs", Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12)
    }

    @Test func tenAfterHandlersCostLittleDiskBesideTheRecords() async throws {
        let plain = try await Self.bytesPerRecord(withHooks: false)
        let hooked = try await Self.bytesPerRecord(withHooks: true)
        let ratio = hooked.bytes / plain.bytes
        print("disk per record after a checkpoint, \(Self.records) creates: no hooks \(Int(plain.bytes.rounded())) B, "
              + "10 after-handlers \(Int(hooked.bytes.rounded())) B, ratio \(String(format: "%.3f", ratio)); "
              + "wall time per create: no hooks \(Self.µs(plain.writing)), with its event \(Self.µs(hooked.writing)), "
              + "recording its 10 successes \(Self.µs(hooked.succeeding))")
        // Sizes vary by a few bytes a record from run to run (random ids, clock readings), far
        // less than the margin (about 1.13 is usual).
        #expect(ratio <= 1.25)
    }
}
