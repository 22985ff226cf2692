import Testing
import MoonbaseJSON
import MoonbaseModel
@testable import RecordStore

@Suite("Concurrency")
struct ConcurrencyTests {
    @Test func thousandConcurrentInsertsAreAllStored() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(directory: directory)
            _ = try await store.createCollection(name: "posts")

            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0..<1000 {
                    group.addTask {
                        try await insert(store, "posts", ["n": .int(Int64(i)), "title": .string("post \(i)")]).id
                    }
                }
                var ids: [String] = []
                for try await id in group { ids.append(id) }
                return ids
            }
            #expect(ids.count == 1000)
            #expect(Set(ids).count == 1000)

            let page = try await store.list(collection: "posts", page: 1, perPage: 500, sort: .id(ascending: true))
            #expect(page.totalItems == 1000 && page.totalPages == 2)
            var numbers = Set<Int64>()
            for p in 1...2 {
                for record in try await store.list(collection: "posts", page: p, perPage: 500, sort: .default).items {
                    if case .int(let n)? = record.fields["n"] { numbers.insert(n) }
                }
            }
            #expect(numbers == Set(0..<1000))
        }
    }

    @Test(arguments: Engine.allCases) func concurrentReplacesOfOneVersionHaveOneWinner(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let record = try await insert(store, "posts", ["n": .int(0)])

        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for i in 1...20 {
                group.addTask {
                    await storeError { try await store.replace(collection: "posts", id: record.id, fields: ["n": .int(Int64(i))], ifVersion: 1).record } == nil
                }
            }
            var wins = 0
            for await won in group where won { wins += 1 }
            return wins
        }
        #expect(outcomes == 1)
        #expect(try await store.record(collection: "posts", id: record.id).version == 2)
    }

    /// A write is acknowledged once committed: a read right after, on another connection of the
    /// pool, finds it (on PostgreSQL a statement's rows arrive before its commit; no write may be
    /// acknowledged on them alone).
    @Test(arguments: Engine.allCases) func anAcknowledgedWriteIsReadBackAtOnce(engine: Engine) async throws {
        let store = try await makeStore(engine)
        // 20 writers of 10 records each: writes share transactions, reads stay within the test
        // store's few connections.
        let problems = await withTaskGroup(of: [String].self) { group in
            for writer in 0..<20 {
                group.addTask {
                    var problems: [String] = []
                    for i in 0..<10 {
                        do {
                            let record = try await store.insert(Record.new(collection: "posts", fields: ["n": .int(Int64(writer * 10 + i))]),
                                                                outbox: outbox()).record
                            let read = try await store.record(collection: "posts", id: record.id)
                            if read != record { problems.append("read back \(read), not \(record)") }
                        } catch {
                            problems.append("\(error)")
                        }
                    }
                    return problems
                }
            }
            return await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(problems.isEmpty, "\(problems.count): \(Set(problems).prefix(3))")
    }

    @Test(arguments: Engine.allCases) func refusedWriteInABatchDoesNotSpoilTheOthers(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let existing = try await insert(store, "posts", ["n": .int(0)])

        // Half the tasks insert fresh records, half try to reuse an id; run together they
        // share transactions, and only the clashing writes may fail.
        let results = await withTaskGroup(of: (Bool, Bool).self) { group in
            for i in 0..<100 {
                group.addTask {
                    let clash = i % 2 == 0
                    let record = clash
                        ? Record(id: existing.id, collection: "posts", created: existing.created,
                                 updated: existing.updated, version: 1, fields: ["n": .int(Int64(i))])
                        : Record.new(collection: "posts", fields: ["n": .int(Int64(i))])
                    return (clash, await storeError { try await store.insert(record).record } == nil)
                }
            }
            var collected: [(Bool, Bool)] = []
            for await result in group { collected.append(result) }
            return collected
        }
        #expect(results.filter { $0.0 && $0.1 }.isEmpty)     // no clash stored
        #expect(results.filter { !$0.0 && $0.1 }.count == 50) // every fresh record stored
        #expect(try await store.list(collection: "posts", page: 1, perPage: 500, sort: .default).totalItems == 51)
        #expect(try await store.record(collection: "posts", id: existing.id) == existing)
    }

    @Test func asyncWritesShareTransactions() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(directory: directory)
            _ = try await store.createCollection(name: "posts")
            let before = store.writeStatistics

            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0..<300 {
                    group.addTask {
                        try await store.insert(Record.new(collection: "posts", fields: ["n": .int(Int64(i))])).record.id
                    }
                }
                var ids: [String] = []
                for try await id in group { ids.append(id) }
                return ids
            }
            #expect(Set(ids).count == 300)
            #expect(try await store.list(collection: "posts", page: 1, perPage: 500, sort: .default).totalItems == 300)

            let after = store.writeStatistics
            #expect(after.writes - before.writes == 300)
            // Group commit: waiting writes were committed together, in fewer transactions.
            #expect(after.transactions - before.transactions < 300)
        }
    }

    /// The whole record API through the protocol, as the server and the `records` module use it.
    @Test func protocolRoundTrip() async throws {
        let view: any RecordStore = try SQLiteStore.inMemory()
        _ = try await view.createCollection(name: "posts")
        #expect(try await view.collections().map(\.name) == ["posts"])

        let record = try await view.insert(Record.new(collection: "posts", fields: ["title": .string("a")])).record
        #expect(try await view.record(collection: "posts", id: record.id) == record)

        let replaced = try await view.replace(collection: "posts", id: record.id, fields: ["title": .string("b")], ifVersion: 1).record
        #expect(replaced.version == 2 && replaced.fields["title"] == .string("b"))

        do {
            _ = try await view.delete(collection: "posts", id: record.id, ifVersion: 1).record
            Issue.record("a stale delete should fail")
        } catch {
            #expect(error == .versionConflict(collection: "posts", id: record.id))
        }
        do {
            _ = try await view.insert(Record.new(collection: "nope", fields: [:])).record
            Issue.record("an insert into an unknown collection should fail")
        } catch {
            #expect(error == .collectionNotFound("nope"))
        }

        #expect(try await view.delete(collection: "posts", id: record.id, ifVersion: 2).record == replaced)
        #expect(try await view.list(collection: "posts", page: 1, perPage: 30, sort: .default).totalItems == 0)
        try await view.deleteCollection(name: "posts")
        #expect(try await !view.collectionExists("posts"))
    }
}
