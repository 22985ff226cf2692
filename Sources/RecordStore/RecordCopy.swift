import MoonbaseModel

/// Copies every collection and record of one store into another: how a SQLite data folder
/// moves to PostgreSQL (`moonbase copy-data`). Records keep their id, `created`, `updated` and
/// fields, and start again at version 1. No event is written, so no hook runs on the copies, and
/// the source's deliveries and their log stay behind. A record whose id the target already has
/// in that collection is left as it is there, so a copy that stopped half-way can be run again.
public enum RecordCopy {
    /// What a copy did.
    public struct Summary: Sendable, Equatable {
        public var collections = 0
        public var records = 0
        /// Records the target already had.
        public var skipped = 0

        public init(collections: Int = 0, records: Int = 0, skipped: Int = 0) {
            self.collections = collections
            self.records = records
            self.skipped = skipped
        }
    }

    /// Records written at once: enough for group commit to share transactions among them, few
    /// enough that the reads of a rerun's refusals do not queue for long for a connection.
    static let concurrency = 32

    /// Copies `source` into `target`, a page of records at a time (written `concurrency` at once,
    /// so an engine with group commit shares transactions among them). `progress` hears of each
    /// collection once it is copied, with its count of records.
    public static func copy(from source: any RecordStore, to target: any RecordStore,
                            progress: (String, Int) -> Void = { _, _ in }) async throws(StoreError) -> Summary {
        var summary = Summary()
        for collection in try await source.collections() {
            if try await !target.collectionExists(collection.name) { _ = try await target.createCollection(name: collection.name) }
            summary.collections += 1
            var copied = 0
            var page = 1
            while true {
                let items = try await source.list(collection: collection.name, page: page, perPage: RecordPage.maxPerPage,
                                                  sort: .default).items
                if items.isEmpty { break }
                for start in stride(from: 0, to: items.count, by: concurrency) {
                    let outcome = try await insert(items[start..<min(start + concurrency, items.count)], into: target)
                    summary.records += outcome.inserted
                    summary.skipped += outcome.skipped
                }
                copied += items.count
                page += 1
            }
            progress(collection.name, copied)
        }
        return summary
    }

    /// Inserts `records` concurrently; one the target already has is skipped.
    private static func insert(_ records: ArraySlice<Record>, into target: any RecordStore) async throws(StoreError) -> (inserted: Int, skipped: Int) {
        let results = await withTaskGroup(of: Result<Bool, StoreError>.self) { group in
            for record in records {
                group.addTask {
                    do throws(StoreError) {
                        _ = try await target.insert(Record(id: record.id, collection: record.collection, created: record.created,
                                                           updated: record.updated, version: 1, fields: record.fields))
                        return .success(true)
                    } catch {
                        // Refused: because the target has it already (skipped), or for a reason to report.
                        if (try? await target.record(collection: record.collection, id: record.id)) != nil { return .success(false) }
                        return .failure(error)
                    }
                }
            }
            return await group.reduce(into: [Result<Bool, StoreError>]()) { $0.append($1) }
        }
        var counts = (inserted: 0, skipped: 0)
        for result in results {
            if try result.get() { counts.inserted += 1 } else { counts.skipped += 1 }
        }
        return counts
    }
}
