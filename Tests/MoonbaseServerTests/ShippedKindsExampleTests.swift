import Foundation
import HostModules
import Hummingbird
import HummingbirdTesting
import MoonbaseJSON
import MoonbaseServer
import MoonbaseTestSupport
import RecordStore
import Testing

/// The examples of hooks/ for SPEC section 14: order_paid.lua (`when`/`changed`) and
/// payments.lua (a public route verifying a signed webhook), on a server in process.
@Suite(.serialized) struct ShippedKindsExampleTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    @Test func orderPaidRunsOnlyForTheUpdateThatPaysAndStoresNoOtherEvent() async throws {
        let logs = LogCapture()
        unsetenv("ORDER_PAID_URL")
        try await withServer(hooks: ["order_paid.lua": try ShippedExampleTests.example("order_paid.lua")], logs: logs) { client, server in
            try await client.createCollection("orders")
            let order = try await client.send(.post, "/api/v1/collections/orders/records", json: #"{"status":"new","total":30}"#)
            let id = try #require(order.body?["id"]?.string)
            for patch in [#"{"note":"gift"}"#, #"{"status":"paid"}"#, #"{"note":"wrapped"}"#, #"{"status":"paid"}"#] {
                #expect(try await client.send(.patch, "/api/v1/collections/orders/records/\(id)", json: patch).status == .ok)
            }
            await server.waitForDeliveries()
            let paid = logs.lines("order paid")
            #expect(paid.count == 1 && paid.first?.metadata["order"] == id && paid.first?.metadata["was"] == "new")
            #expect(paid.first?.metadata["total"] == "30")
            #expect(try await server.store.deliveries(DeliveryFilter()).count == 1, "the other writes stored no event")
            #expect(server.hooks.catalog.statsSnapshot()[0].errors == 0)
        }
    }

    /// A request signed as `webhook.send` signs it (Standard Webhooks).
    private func signed(_ body: String, secret: String = Self.secret, timestamp: Int64 = Int64(Date().timeIntervalSince1970),
                        id: String = "msg_\(UUID().uuidString)") throws -> HTTPFields {
        var fields: HTTPFields = [.contentType: "application/json"]
        for (name, value) in try StandardWebhook.headers(id: id, timestamp: timestamp, body: Array(body.utf8), secret: secret) {
            fields[HTTPFields.Element.Name(name)!] = value
        }
        return fields
    }

    @Test func paymentsWebhookVerifiesTheSignatureAndMarksTheOrderPaid() async throws {
        let logs = LogCapture()
        let hooks = ["payments.lua": try ShippedExampleTests.example("payments.lua"),
                     "order_paid.lua": try ShippedExampleTests.example("order_paid.lua")]
        unsetenv("ORDER_PAID_URL")
        setenv("PAYMENTS_WEBHOOK_SECRET", Self.secret, 1)
        defer { unsetenv("PAYMENTS_WEBHOOK_SECRET") }
        try await withServer(hooks: hooks, logs: logs) { client, server in
            try await client.createCollection("orders")
            let order = try await client.send(.post, "/api/v1/collections/orders/records", json: #"{"status":"new","total":12}"#)
            let id = try #require(order.body?["id"]?.string)
            let body = #"{"type":"payment.succeeded","data":{"order_id":"\#(id)"}}"#

            let forged = try await client.send(.post, "/webhooks/payments", json: body, headers: try signed(body, secret: "whsec_" + Signing.base64(Array("other key".utf8))))
            #expect(forged.status == .unauthorized && forged.body == ["error": "invalid signature"])
            let tampered = try await client.send(.post, "/webhooks/payments", json: body.replacingOccurrences(of: "succeeded", with: "succeeded "), headers: try signed(body))
            #expect(tampered.status == .unauthorized)
            let stale = try await client.send(.post, "/webhooks/payments", json: body, headers: try signed(body, timestamp: Int64(Date().timeIntervalSince1970) - 3600))
            #expect(stale.status == .unauthorized)
            #expect(try await client.send(.post, "/webhooks/payments", json: body, headers: [.contentType: "application/json"]).status == .unauthorized)
            #expect(logs.lines("payments webhook refused").map { $0.metadata["reason"] } ==
                    ["no valid signature", "no valid signature", "timestamp too old or too new", "missing webhook headers"])
            #expect(try await client.send(.get, "/api/v1/collections/orders/records/\(id)").body?["status"] == "new")

            let other = #"{"type":"payment.refunded","data":{}}"#
            let ignored = try await client.send(.post, "/webhooks/payments", json: other, headers: try signed(other))
            #expect(ignored.status == .ok && ignored.body == ["ignored": true])
            let unknown = #"{"type":"payment.succeeded","data":{"order_id":"nosuchorder0000"}}"#
            let missing = try await client.send(.post, "/webhooks/payments", json: unknown, headers: try signed(unknown))
            #expect(missing.status == .unprocessableContent && missing.body?["error"]?.string?.hasPrefix("cannot mark order nosuchorder0000 paid") == true)

            let received = try await client.send(.post, "/webhooks/payments", json: body, headers: try signed(body))
            #expect(received.status == .ok && received.body == ["received": true], "no admin token needed: the route is public")
            let stored = try await client.send(.get, "/api/v1/collections/orders/records/\(id)")
            #expect(stored.body?["status"] == "paid" && stored.body?["paid_at"]?.string != nil)
            await server.waitForDeliveries()
            #expect(logs.lines("order paid").map { $0.metadata["order"] } == [id], "the route's write fired the when/changed handler")
        }
    }

    @Test func paymentsWebhookWithoutASecretIsRefused() async throws {
        unsetenv("PAYMENTS_WEBHOOK_SECRET")
        try await withServer(hooks: ["payments.lua": try ShippedExampleTests.example("payments.lua")]) { client, _ in
            let answer = try await client.send(.post, "/webhooks/payments", json: "{}", headers: [.contentType: "application/json"])
            #expect(answer.status == .serviceUnavailable && answer.body == ["error": "payments webhook is not configured"])
        }
    }
}
