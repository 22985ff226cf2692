import Foundation
import MoonbaseJSON
import MoonbaseModel
import MoonbaseTestSupport
import Synchronization
import Testing
@testable import RecordStore

/// Deliveries shared by nodes on one PostgreSQL database (`DeliveryClaims`): who runs what,
/// lane by lane, and what happens when a node stops renewing its leases.
@Suite("PostgreSQL: delivery claims across nodes")
struct PostgresClaimsTests {
    /// Nodes `names` on one new database with a `posts` collection.
    static func nodes(_ names: [String]) async throws -> [PostgresStore] {
        let location = try await PostgresTestDatabase.create()
        var stores: [PostgresStore] = []
        for name in names {
            stores.append(try await PostgresStore.open(location, logger: PostgresTestDatabase.logger, node: name,
                                                       maxConnections: 2))
        }
        _ = try await stores[0].createCollection(name: "posts")
        // The others learn of the collection as a restarted node would.
        for store in stores.dropFirst() { _ = try? await store.createCollection(name: "posts") }
        return stores
    }

    static func close(_ stores: [PostgresStore]) async {
        for store in stores { await store.close() }
    }

    /// An event for `handlers`, three attempts each.
    static func outbox(_ handlers: [String], collectionOrder: Bool) -> OutboxRequest {
        OutboxRequest(eventID: UUID().uuidString,
                      targets: handlers.map { DeliveryTarget(handler: $0, maxAttempts: 3, keepsCollectionOrder: collectionOrder) })
    }

    static func update(_ store: PostgresStore, _ record: Record, _ fields: JSONObject, handlers: [String] = ["h1"],
                       collectionOrder: Bool = false) async throws -> WriteResult {
        let current = try await store.record(collection: record.collection, id: record.id)
        return try await store.replace(collection: record.collection, id: record.id, fields: fields, ifVersion: current.version,
                                       outbox: outbox(handlers, collectionOrder: collectionOrder))
    }

    static func create(_ store: PostgresStore, _ fields: JSONObject, handlers: [String] = ["h1"],
                       collectionOrder: Bool = false) async throws -> WriteResult {
        try await store.insert(Record.new(collection: "posts", fields: fields), outbox: outbox(handlers, collectionOrder: collectionOrder))
    }

    @Test func aWriteClaimsItsDeliveriesUnlessAnotherNodeHoldsTheirLane() async throws {
        let stores = try await Self.nodes(["a", "b"])
        let (a, b) = (stores[0], stores[1])
        let created = try await Self.create(a, ["n": 1], handlers: ["h1", "h2"])
        #expect(created.deliveries.elsewhere.isEmpty, "nothing else in its lanes: node a runs both")
        #expect(try await a.unfinishedDeliveries().map(\.delivery.id) == [created.deliveries.id(at: 0), created.deliveries.id(at: 1)])
        #expect(try await b.unfinishedDeliveries().isEmpty, "a node takes up only its own claims")

        // Node b updates the record while a still holds both lanes: b runs nothing of it.
        let updated = try await Self.update(b, created.record, ["n": 2], handlers: ["h1", "h2"])
        #expect(updated.deliveries.elsewhere == [0, 1])
        #expect(try await b.claim(limit: 100).isEmpty, "the lanes are a's until its deliveries finish")
        #expect(try await b.unfinishedDeliveries().isEmpty)

        // h1's lane frees up when a's delivery succeeds; h2's stays a's (it failed and will retry).
        let held = try await a.unfinishedDeliveries().map(\.delivery)
        try await a.recordAttempts([outcome(held[0], attempt: 1),
                                    outcome(held[1], attempt: 1, error: "boom", next: Timestamp.currentMilliseconds() + 60_000)])
        let claimed = try await b.claim(limit: 100)
        #expect(claimed.map(\.delivery.id) == [updated.deliveries.id(at: 0)], "only the lane a no longer holds")
        #expect(claimed.first?.event.event.data["n"] == .int(2))
        #expect(try await b.unfinishedDeliveries().map(\.delivery.id) == [updated.deliveries.id(at: 0)], "now b's own")
        #expect(try await a.claim(limit: 100).map(\.delivery.id) == [updated.deliveries.id(at: 1)],
                "a takes h2's next delivery, behind its own failed one, and not h1's, which b holds")

        // A new record's deliveries are free lanes, whoever writes it.
        let other = try await Self.create(b, ["n": 3])
        #expect(other.deliveries.elsewhere.isEmpty)
        await Self.close(stores)
    }

    @Test func aNodesOwnEarlierDeliveryDoesNotHoldItsLaterOnesBack() async throws {
        let stores = try await Self.nodes(["a"])
        let created = try await Self.create(stores[0], ["n": 1])
        let updated = try await Self.update(stores[0], created.record, ["n": 2])
        #expect(updated.deliveries.elsewhere.isEmpty, "one node keeps its own lanes in order in memory")
        #expect(try await stores[0].unfinishedDeliveries().count == 2)
        await Self.close(stores)
    }

    @Test func collectionOrderedHandlersShareOneLanePerCollection() async throws {
        let stores = try await Self.nodes(["a", "b"])
        let (a, b) = (stores[0], stores[1])
        _ = try await Self.create(a, ["n": 1], handlers: ["count", "index"], collectionOrder: true)
        let other = try await Self.create(b, ["n": 2], handlers: ["count"], collectionOrder: true)
        #expect(other.deliveries.elsewhere == [0], "another record, but the same collection's lane")
        let unordered = try await Self.create(b, ["n": 3], handlers: ["count"])
        #expect(unordered.deliveries.elsewhere.isEmpty, "per-record order: another record is another lane")
        await Self.close(stores)
    }

    /// Runs out `node`'s lease now, as its death would once the lease has passed
    /// (the time it takes is not what these tests are about).
    static func expireLeases(of node: String, in store: PostgresStore) async throws {
        _ = try await store.read { client, logger in
            try await client.query("UPDATE delivery_leases SET lease_until = 0 WHERE node = \(node)", logger: logger)
        }
    }

    /// A node hears when deliveries are left for others: a write behind its lane, a retry left
    /// to the holder, claims given back. (Claim passes on a timer are the backstop.)
    @Test func nodesHearOfDeliveriesLeftUnclaimed() async throws {
        let stores = try await Self.nodes(["a", "b"])
        let (a, b) = (stores[0], stores[1])
        let heard = Heard()
        let listening = Task { await a.listenForUnclaimed { heard.count.withLock { $0 += 1 } } }
        defer { listening.cancel() }
        // Once when it starts listening.
        #expect(try await Self.wait { heard.count.withLock { $0 } >= 1 })

        func heardAfter(_ what: String, _ body: () async throws -> Void) async throws {
            let before = heard.count.withLock { $0 }
            try await body()
            #expect(try await Self.wait { heard.count.withLock { $0 } > before }, "\(what) is heard")
        }
        let created = try await Self.create(a, ["n": 1]) // a holds the record's lane
        try await heardAfter("a write behind another node's lane") {
            let updated = try await Self.update(b, created.record, ["n": 2])
            #expect(updated.deliveries.elsewhere == [0])
        }
        try await heardAfter("claims given back") { try await a.release(nil) }
        await Self.close(stores)
    }

    final class Heard: Sendable {
        let count = Mutex(0)
    }

    /// Waits up to 10 seconds for `done`.
    static func wait(_ done: () -> Bool) async throws -> Bool {
        for _ in 0..<200 {
            if done() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return done()
    }

    /// Leases of nodes gone for a day go at the next renewal, unless the node still holds
    /// deliveries (a survivor has yet to take them up); nodes silent for a day leave the registry.
    @Test func nodesGoneForADayAreForgottenUnlessTheyHoldDeliveries() async throws {
        let stores = try await Self.nodes(["a", "b", "c"])
        let (a, b) = (stores[0], stores[1])
        _ = try await Self.create(b, ["n": 1])
        let now = Timestamp.currentMilliseconds()
        _ = try await a.read { client, logger in
            try await client.query("UPDATE delivery_leases SET lease_until = \(now - 2 * PostgresClaims.forgottenAfterMilliseconds) WHERE node <> 'a'",
                                   logger: logger)
            try await client.query("""
                INSERT INTO nodes (id, address, started, version, hooks_digest, heartbeat_at)
                VALUES ('gone', 'x:1', 'then', '0', 'd', now() - interval '2 days'), ('recent', 'x:2', 'then', '0', 'd', now() - interval '1 hour')
                """, logger: logger)
        }
        try await a.renew()
        try await a.recordHeartbeat(NodeHeartbeat(id: "a", address: "a:1", started: "now", version: "0", hooksDigest: "d"))
        let leases = try await a.read { client, logger in
            try await client.query("SELECT node FROM delivery_leases ORDER BY node", logger: logger).collect().map { try $0.decode(String.self) }
        }
        #expect(leases == ["a", "b"], "c held nothing; b still holds its delivery")
        let nodes = try await a.read { client, logger in
            try await client.query("SELECT id FROM nodes ORDER BY id", logger: logger).collect().map { try $0.decode(String.self) }
        }
        #expect(nodes == ["a", "recent"])
        await Self.close(stores)
    }

    @Test func aDeadNodesClaimsAreTakenUpOnceItsLeaseRunsOut() async throws {
        let stores = try await Self.nodes(["a", "b", "c"])
        let (a, b, c) = (stores[0], stores[1], stores[2])
        let first = try await Self.create(a, ["n": 1])
        let second = try await Self.update(b, first.record, ["n": 2])
        #expect(second.deliveries.elsewhere == [0])
        #expect(try await c.claim(limit: 100).isEmpty, "a's lease is still running")
        // Node a dies: its lease runs out. Nodes b and c claim at once; each delivery goes to one of them.
        try await Self.expireLeases(of: "a", in: a)
        async let fromB = b.claim(limit: 100)
        async let fromC = c.claim(limit: 100)
        let (byB, byC) = try await (fromB, fromC)
        let ids = (byB + byC).map(\.delivery.id)
        #expect(Set(ids).count == ids.count, "no delivery claimed twice: \(ids)")
        #expect(Set(ids) == [first.deliveries.id(at: 0), second.deliveries.id(at: 0)])
        #expect(byB.isEmpty || byC.isEmpty, "one pass took the whole lane, in order")
        #expect(ids == ids.sorted())
        #expect(try await a.unfinishedDeliveries().isEmpty, "a restarted under its name finds them taken")
        await Self.close(stores)
    }

    @Test func renewedLeasesKeepClaimsAndAReleasedNodesClaimsGoAtOnce() async throws {
        let stores = try await Self.nodes(["a", "b"])
        let (a, b) = (stores[0], stores[1])
        let created = try await Self.create(a, ["n": 1])
        try await Self.expireLeases(of: "a", in: a)
        try await a.renew()
        #expect(try await b.claim(limit: 100).isEmpty, "renewed before another node claimed it")
        try await a.release(nil)
        #expect(try await b.claim(limit: 100).map(\.delivery.id) == [created.deliveries.id(at: 0)])
        #expect(try await a.unfinishedDeliveries().isEmpty)
        await Self.close(stores)
    }

    @Test func aRequeuedDeliveryIsClaimedByTheNodeThatRequeuedIt() async throws {
        let stores = try await Self.nodes(["a", "b"])
        let (a, b) = (stores[0], stores[1])
        let created = try await Self.create(a, ["n": 1])
        let delivery = try await a.unfinishedDeliveries()[0].delivery
        try await a.recordAttempts([outcome(delivery, attempt: 1, error: "boom", status: .dead)])
        _ = try await b.requeue(deliveryID: created.deliveries.id(at: 0), force: false)
        #expect(try await b.unfinishedDeliveries().map(\.delivery.id) == [created.deliveries.id(at: 0)])
        #expect(try await b.holds(deliveryID: created.deliveries.id(at: 0)))
        #expect(try await !a.holds(deliveryID: created.deliveries.id(at: 0)))
        #expect(try await a.claim(limit: 100).isEmpty)
        await Self.close(stores)
    }

    /// A retry asked of a node while another node runs the same lane (here the record's later
    /// update) is left for the node that holds the lane, which runs it after what it holds.
    @Test func aRequeuedDeliveryWhoseLaneAnotherNodeHoldsIsLeftForThatNode() async throws {
        let stores = try await Self.nodes(["a", "b"])
        let (a, b) = (stores[0], stores[1])
        let created = try await Self.create(a, ["n": 1])
        let dead = created.deliveries.id(at: 0)
        let delivery = try await a.unfinishedDeliveries()[0].delivery
        try await a.recordAttempts([outcome(delivery, attempt: 1, error: "boom", status: .dead)])
        let updated = try await Self.update(b, created.record, ["n": 2])
        #expect(updated.deliveries.elsewhere.isEmpty, "the lane was free (its delivery dead): b claims the update's")

        _ = try await a.requeue(deliveryID: dead, force: false)
        #expect(try await !a.holds(deliveryID: dead))
        #expect(try await a.unfinishedDeliveries().isEmpty)
        #expect(try await a.claim(limit: 100).isEmpty, "b holds the lane")
        #expect(try await b.claim(limit: 100).map(\.delivery.id) == [dead])
        #expect(try await b.holds(deliveryID: dead))
        #expect(try await b.unfinishedDeliveries().map(\.delivery.id) == [dead, updated.deliveries.id(at: 0)])
        await Self.close(stores)
    }
}
