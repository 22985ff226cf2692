import CLuaFloor
import Foundation
import HookHost
import Logging
import LuaRuntime
import MoonbaseJSON
import MoonbaseModel

/// Dispatch of the SPEC section 4 event carrying a 10-field record to no-op after-handlers,
/// through the hook host, against the C floor: the same event built and `lua_pcall`ed from plain
/// C (Benchmarks/CLuaFloor). Rounds alternate between the two so drift hits both alike.
enum HookDispatchBenchmark {
    static let record: JSONObject = [
        "title": "Hello, Moonbase", "slug": "hello-moonbase", "body": "A records backend with drop-in Lua hooks.",
        "author": "ada", "status": "published", "views": 1234, "likes": 56, "rating": 4.5, "score": 0.875, "published": true,
    ]

    static let event = RecordEvent(id: "evt_01jd3k2m4n5p6q7r8s9t0v", type: .created, collection: "posts", recordID: "k3j4h5g6f7d8s9a",
                                 data: record, timestamp: "2026-11-21T23:38:21.123Z")

    static func run(iterations: Int, rounds: Int) throws {
        print("hook dispatch: \(iterations) events per round, \(rounds) rounds, median ns/event")
        print("handlers  moonbase ns  C floor ns  ratio")
        for handlers in [1, 10] {
            try withHooks(String(repeating: "on_record_create('posts', function(event) end)\n", count: handlers)) { hooks in
                let runtime = hooks.runtimes[0]
                let catalog = hooks.catalog
                let (host, floor) = medians(rounds: rounds, iterations: iterations) {
                    runtime.runAfter(event, handlers: catalog.matching(.after, .created, collection: "posts"))
                } floor: {
                    mb_floor_dispatch(Int32(handlers), iterations)
                }
                guard catalog.statsSnapshot().allSatisfy({ $0.calls == iterations * rounds && $0.errors == 0 }) else {
                    fatalError("not every handler call was counted")
                }
                print(String(format: "%8d  %11.0f  %10.0f  %5.2f", handlers, host, floor, host / floor))
            }
        }
    }

    /// One before-handler that changes the data (`data.slug` from `data.title`), the change read
    /// back into the record to store, against the C floor doing the same (`mb_floor_before`).
    static func runBefore(iterations: Int, rounds: Int) throws {
        try withHooks("before_record_create('posts', function(event) event.data.slug = string.lower(event.data.title) end)\n") { hooks in
            let runtime = hooks.runtimes[0]
            let handlers = hooks.catalog.matching(.before, .created, collection: "posts")
            var stored = 0
            let (host, floor) = medians(rounds: rounds, iterations: iterations) {
                runtime.runBefore(event, handlers: handlers) { outcome in
                    if case .proceed(let data) = outcome, data["slug"] == "hello, moonbase" { stored += 1 }
                }
            } floor: {
                mb_floor_before(iterations)
            }
            guard stored == iterations * rounds else { fatalError("not every before-hook run stored its change") }
            print("before-hook: 1 handler changing the data, read back; \(iterations) events per round, \(rounds) rounds, median ns/event")
            print("moonbase ns  C floor ns  ratio")
            print(String(format: "%11.0f  %10.0f  %5.2f", host, floor, host / floor))
        }
    }

    /// Loads `source` as the only hook file of a temporary folder, for `body`.
    static func withHooks(_ source: String, _ body: (LoadedHooks) throws -> Void) throws {
        let folder = NSTemporaryDirectory() + "moonbase-bench-\(UUID().uuidString)/hooks"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: (folder as NSString).deletingLastPathComponent) }
        try source.write(toFile: folder + "/bench.lua", atomically: true, encoding: .utf8)
        try body(try LoadedHooks.load(directory: HookDirectory(path: folder), states: 1,
                                      logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }))
    }

    /// Median ns per event of `host` (called `iterations` times a round) and of `floor` (which
    /// runs its own iterations and returns the elapsed ns), rounds alternating between the two.
    static func medians(rounds: Int, iterations: Int, host: () -> Void, floor: () -> Int64) -> (host: Double, floor: Double) {
        var hostTimes: [Double] = []
        var floorTimes: [Double] = []
        for _ in 0..<rounds {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<iterations { host() }
            hostTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / Double(iterations))
            floorTimes.append(Double(floor()) / Double(iterations))
        }
        return (median(hostTimes), median(floorTimes))
    }

    static func median(_ values: [Double]) -> Double {
        values.sorted()[values.count / 2]
    }
}
