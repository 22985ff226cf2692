import Foundation
import HookHost
import HostModules
import LuaRuntime
import MoonbaseJSON
import MoonbaseTestSupport
import Testing

/// The examples in hooks/ load and do what their comments say.
@Suite struct ShippedHooksTests {
    static let hooksPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../hooks").standardized.path

    @Test func everyShippedFileLoads() throws {
        let hooks = try LoadedHooks.load(directory: HookDirectory(path: Self.hooksPath), states: 1, logger: LogCapture().logger)
        #expect(hooks.catalog.files.map(\.file) == ["hooks/audit.lua", "hooks/cleanup.lua", "hooks/counters.lua", "hooks/notifications.lua", "hooks/order_paid.lua",
                                                    "hooks/payments.lua", "hooks/search.lua", "hooks/validate.lua", "hooks/webhooks.lua"])
        #expect(hooks.catalog.files.allSatisfy { $0.status == .loaded })
        #expect(hooks.catalog.handlers.map(\.name) == ["audit", "cleanup_sessions", "count_posts_per_author", "on_new_post", "on_user_update", "deletion_notice",
                                                       "notify_order_paid", "receive_payment", "sync_search_index", "require_title_and_slug", "keep_title_on_update",
                                                       "send_order_to_fulfillment"])
    }

    @Test func validateRefusesAndFillsInASlug() throws {
        let logs = LogCapture()
        let hooks = try LoadedHooks.load(directory: HookDirectory(path: Self.hooksPath), states: 1, modules: standardModules, logger: logs.logger)
        let runtime = hooks.runtimes[0]
        let before = hooks.catalog.matching(.before, .created, collection: "posts")
        #expect(runtime.runBefore(event(data: ["body": "x"]), handlers: before) == .rejected(message: "a post needs a title", status: 422))
        #expect(runtime.runBefore(event(data: ["title": "  Hello, World! "]), handlers: before) == .proceed(["title": "Hello, World!", "slug": "hello-world"]))
        runtime.runAfter(event(data: ["title": "Hi"]), handlers: hooks.catalog.matching(.after, .created, collection: "posts"))
        #expect(logs.lines("new post").first?.metadata["notified"] == "1")
        #expect(logs.lines("audit").first?.metadata["event"] == "record.created")
    }
}
