import Hummingbird
import HummingbirdTesting
import MoonbaseJSON
import MoonbaseServer
import MoonbaseTestSupport
import RecordStore
import Testing

/// `when` and `changed` on a running server: a handler the write does not interest is never
/// called, and a write no handler wants stores no event.
@Suite struct ConditionalHookTests {
    static let hooks = """
        before_record_create("orders", function(e) e.data.checked = true end, {when = {coupon = json.null}})
        before_record_update("orders", function(e) reject("paid orders are final") end,
                             {changed = {"total"}, when = {status = "paid"}})
        on_record_update("orders", function(e)
          log.info("paid", {id = e.record_id, total = e.data.total})
        end, {name = "notify_paid", when = {status = "paid"}, changed = {"status"}})
        on_record_create("orders", function(e) log.info("big", {id = e.record_id}) end, {name = "big", when = {total = 100}})
        """

    @Test func beforeHookRunsOnlyWhenItsConditionHolds() async throws {
        try await withServer(hooks: ["orders.lua": Self.hooks]) { client, server in
            try await client.createCollection("orders")
            let plain = try await client.send(.post, "/api/v1/collections/orders/records", json: #"{"total":5}"#)
            #expect(plain.body?["checked"] == true, "no coupon: the before-hook ran")
            let withCoupon = try await client.send(.post, "/api/v1/collections/orders/records", json: #"{"total":5,"coupon":"HALF"}"#)
            #expect(withCoupon.status == .created && withCoupon.body?["checked"] == nil, "a coupon: skipped")
            let nullCoupon = try await client.send(.post, "/api/v1/collections/orders/records", json: #"{"total":5,"coupon":null}"#)
            #expect(nullCoupon.body?["checked"] == true, "json.null matches null too")

            let id = try #require(plain.body?["id"]?.string)
            let paid = try await client.send(.patch, "/api/v1/collections/orders/records/\(id)", json: #"{"status":"paid"}"#)
            #expect(paid.status == .ok, "total did not change: the refusing hook is skipped")
            let changed = try await client.send(.patch, "/api/v1/collections/orders/records/\(id)", json: #"{"total":7}"#)
            #expect(changed.status == .unprocessableContent && changed.body?["error"] == "paid orders are final")
            let stats = server.hooks.catalog.statsSnapshot()
            #expect(stats[0].calls == 2 && stats[1].calls == 1)
        }
    }

    @Test func afterHookIsDeliveredOnlyWhenTheWriteMatches() async throws {
        let logs = LogCapture()
        try await withServer(hooks: ["orders.lua": Self.hooks], logs: logs) { client, server in
            try await client.createCollection("orders")
            let order = try await client.send(.post, "/api/v1/collections/orders/records", json: #"{"total":100,"coupon":"X"}"#)
            let id = try #require(order.body?["id"]?.string)
            _ = try await client.send(.patch, "/api/v1/collections/orders/records/\(id)", json: #"{"note":"gift"}"#)
            _ = try await client.send(.patch, "/api/v1/collections/orders/records/\(id)", json: #"{"status":"paid"}"#)
            _ = try await client.send(.patch, "/api/v1/collections/orders/records/\(id)", json: #"{"note":"still paid"}"#)
            await server.waitForDeliveries()
            #expect(logs.lines("paid").map { $0.metadata["id"] } == [id], "only the update that made it paid")
            #expect(logs.lines("big").count == 1)
            let deliveries = try await server.store.deliveries(DeliveryFilter())
            #expect(deliveries.count == 2, "one event for the create, one for the paying update, none for the others")
            #expect(Set(deliveries.map(\.handler)).count == 2)
            let listing = try await client.send(.get, "/api/v1/hooks")
            guard case .array(let files)? = listing.body, case .array(let handlers)? = files.first?["handlers"] else {
                Issue.record("no listing"); return
            }
            #expect(handlers[2]["when"] == ["status": "paid"] && handlers[2]["changed"] == ["status"])
            #expect(handlers[2]["calls"] == 1)
        }
    }

    @Test func aWriteNoHandlerWantsStoresNoEvent() async throws {
        try await withServer(hooks: ["orders.lua": Self.hooks], configure: { $0.hookDeliveryEnabled = false }) { client, server in
            try await client.createCollection("orders")
            let order = try await client.send(.post, "/api/v1/collections/orders/records", json: #"{"total":3,"coupon":"X"}"#)
            let id = try #require(order.body?["id"]?.string)
            _ = try await client.send(.patch, "/api/v1/collections/orders/records/\(id)", json: #"{"status":"open"}"#)
            _ = try await client.send(.delete, "/api/v1/collections/orders/records/\(id)")
            #expect(try await server.store.unfinishedDeliveries().isEmpty, "no handler wanted any of these writes")
            _ = try await client.send(.post, "/api/v1/collections/orders/records", json: #"{"total":100}"#)
            let stored = try await server.store.unfinishedDeliveries()
            #expect(stored.count == 1 && stored.first?.event.event.data["total"] == 100, "the one wanted write stored its event")
        }
    }
}
