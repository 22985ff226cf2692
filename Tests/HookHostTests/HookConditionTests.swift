import HookHost
import MoonbaseJSON
import MoonbaseTestSupport
import Testing

/// `when` and `changed` (SPEC section 14): parsed at registration, decided in Swift.
@Suite struct HookConditionTests {
    @Test func badShapesAreLoadErrorsNamingFileAndLine() throws {
        let cases: [(source: String, error: String)] = [
            ("on_record_create('orders', function() end, {when = 'paid'})", "option 'when' must be a table of field = value"),
            ("on_record_create('orders', function() end, {when = {}})", "with at least one field"),
            ("on_record_create('orders', function() end, {when = {'paid'}})", "option 'when' must be a table of field = value"),
            ("on_record_update('orders', function() end, {when = {updated = 'x'}})", "cannot test 'updated'"),
            ("on_record_create('orders', function() end, {changed = {'status'}})", "option 'changed' applies to updates only"),
            ("before_record_delete('orders', function() end, {changed = 'status'})", "option 'changed' applies to updates only"),
            ("on_any_event(function() end, {changed = {'status'}})", "option 'changed' applies to updates only"),
            ("on_record_update('orders', function() end, {changed = {}})", "must be a field name or a non-empty list"),
            ("on_record_update('orders', function() end, {changed = {'status', 3}})", "must be a field name or a non-empty list"),
            ("on_record_update('orders', function() end, {changed = {'id'}})", "cannot name 'id': a system field"),
            ("on_hook_failed(function() end, {when = {status = 'paid'}})", "unknown option 'when' (allowed: name)"),
        ]
        for (position, bad) in cases.enumerated() {
            let folder = try HooksFolder(["bad.lua": "local x = 1\n" + bad.source])
            defer { folder.remove() }
            let file = try folder.load().catalog.files[0]
            #expect(file.status == .failed, "case \(position)")
            #expect(file.error?.hasPrefix("hooks/bad.lua:2: ") == true && file.error?.contains(bad.error) == true,
                    "case \(position): \(file.error ?? "loaded")")
        }
    }

    @Test func conditionsAreKeptListedAndDecidedOnTheData() throws {
        let folder = try HooksFolder(["c.lua": """
            on_record_update("orders", function() end, {name = "paid", when = {status = "paid", total = 10}, changed = {"status"}})
            before_record_create("orders", function() end, {name = "no_coupon", when = {coupon = json.null}})
            on_record_create("orders", function() end, {name = "always"})
            on_record_update("orders", function() end, {name = "either", changed = "status"})
            """])
        defer { folder.remove() }
        let catalog = try folder.load().catalog
        #expect(catalog.files[0].status == .loaded, "\(catalog.files[0].error ?? "")")
        let paid = try #require(catalog.handlers[0].condition)
        #expect(paid.when == ["status": "paid", "total": 10] && paid.changed == ["status"])
        #expect(catalog.handlers[2].condition == nil)
        #expect(catalog.handlers[3].condition?.changed == ["status"])

        // `when`: JSON equality, numbers by value; `changed`: old against new.
        #expect(paid.admits(data: ["status": "paid", "total": 10.0], oldData: ["status": "new"]))
        #expect(!paid.admits(data: ["status": "paid", "total": 10], oldData: ["status": "paid"]), "status did not change")
        #expect(!paid.admits(data: ["status": "paid", "total": 11], oldData: ["status": "new"]))
        #expect(!paid.admits(data: ["status": "paid"], oldData: ["status": "new"]), "a missing field is not 10")
        #expect(!paid.admits(data: ["status": "paid", "total": 10], oldData: nil), "changed needs old data")
        let noCoupon = try #require(catalog.handlers[1].condition)
        #expect(noCoupon.admits(data: ["sku": "x"], oldData: nil), "json.null: missing")
        #expect(noCoupon.admits(data: ["coupon": .null], oldData: nil), "json.null: null")
        #expect(!noCoupon.admits(data: ["coupon": "HALF"], oldData: nil))
        #expect(!noCoupon.admits(data: ["coupon": false], oldData: nil))
        #expect(catalog.handlers[3].condition?.admits(data: ["status": .null], oldData: [:]) == false, "missing and null are the same")
        #expect(catalog.handlers[3].condition?.admits(data: ["status": ["a": 1, "b": 2]], oldData: ["status": ["b": 2, "a": 1]]) == false,
                "objects compare whatever their key order")

        let match = catalog.match(.after, .updated, collection: "orders")
        #expect(match.handlers == [0, 3] && match.isConditional)
        #expect(catalog.admitted(match.handlers, data: ["status": "paid", "total": 10], oldData: ["status": "new"]) == [0, 3])
        #expect(catalog.admitted(match.handlers, data: ["status": "paid", "total": 9], oldData: ["status": "new"]) == [3])
        #expect(catalog.match(.after, .created, collection: "orders").isConditional == false)

        let listing = catalog.listing().serializedString()
        #expect(listing.contains(#""name":"paid","event":"record.updated","collection":"orders","line":1,"async":true,"retries":0,"order":"record","when":{"status":"paid","total":10},"changed":["status"]"#))
        #expect(listing.contains(#""when":{"coupon":null}"#))
        #expect(!listing.contains(#""name":"always","event":"record.created","collection":"orders","line":3,"async":true,"retries":0,"order":"record","when""#))
    }
}
