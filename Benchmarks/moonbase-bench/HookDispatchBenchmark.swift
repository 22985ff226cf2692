import CLuaFloor
import Foundation
import HookHost
import Logging
import LuaRuntime
import MoonbaseJSON

/// Dispatch of the SPEC section 4 event carrying a 10-field record to no-op after-handlers,
/// through the hook host, against the C floor: the same event built and `lua_pcall`ed from plain
/// C (Benchmarks/CLuaFloor). Rounds alternate between the two so drift hits both alike.
enum HookDispatchBenchmark {
    static let record: JSONObject = [
        "title": "Hello, Moonbase", "slug": "hello-moonbase", "body": "A records backend with drop-in Lua hooks.",
        "author": "ada", "status": "published", "views": 1234, "likes": 56, "rating": 4.5, "score": 0.875, "published": true,
    ]

    static func run(iterations: Int, rounds: Int) throws {
        let event = HookEvent(id: "evt_01jd3k2m4n5p6q7r8s9t0v", type: .created, collection: "posts", recordID: "k3j4h5g6f7d8s9a",
                              data: record, timestamp: "2026-11-21T23:38:21.123Z")
        print("hook dispatch: \(iterations) events per round, \(rounds) rounds, median ns/event")
        print("handlers  moonbase ns  C floor ns  ratio")
        for handlers in [1, 10] {
            let folder = NSTemporaryDirectory() + "moonbase-bench-\(UUID().uuidString)/hooks"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: (folder as NSString).deletingLastPathComponent) }
            let source = String(repeating: "on_record_create('posts', function(event) end)\n", count: handlers)
            try source.write(toFile: folder + "/noop.lua", atomically: true, encoding: .utf8)
            let hooks = try LoadedHooks.load(directory: HookDirectory(path: folder), states: 1,
                                             logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() })
            let runtime = hooks.runtimes[0]
            let catalog = hooks.catalog

            var host: [Double] = []
            var floor: [Double] = []
            for _ in 0..<rounds {
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<iterations {
                    runtime.runAfter(event, handlers: catalog.matching(.after, .created, collection: "posts"))
                }
                host.append(Double(DispatchTime.now().uptimeNanoseconds - start) / Double(iterations))
                floor.append(Double(mb_floor_dispatch(Int32(handlers), iterations)) / Double(iterations))
            }
            guard catalog.statsSnapshot().allSatisfy({ $0.calls == iterations * rounds && $0.errors == 0 }) else {
                fatalError("not every handler call was counted")
            }
            let hostMedian = median(host)
            let floorMedian = median(floor)
            print(String(format: "%8d  %11.0f  %10.0f  %5.2f", handlers, hostMedian, floorMedian, hostMedian / floorMedian))
        }
    }

    /// One before-handler that changes the data (`data.slug` from `data.title`), the change read
    /// back into the record to store, against the C floor doing the same (`mb_floor_before`).
    static func runBefore(iterations: Int, rounds: Int) throws {
        let event = HookEvent(id: "evt_01jd3k2m4n5p6q7r8s9t0v", type: .created, collection: "posts", recordID: "k3j4h5g6f7d8s9a",
                              data: record, timestamp: "2026-11-21T23:38:21.123Z")
        let folder = NSTemporaryDirectory() + "moonbase-bench-\(UUID().uuidString)/hooks"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: (folder as NSString).deletingLastPathComponent) }
        try "before_record_create('posts', function(event) event.data.slug = string.lower(event.data.title) end)\n"
            .write(toFile: folder + "/slug.lua", atomically: true, encoding: .utf8)
        let hooks = try LoadedHooks.load(directory: HookDirectory(path: folder), states: 1,
                                         logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() })
        let runtime = hooks.runtimes[0]
        let handlers = hooks.catalog.matching(.before, .created, collection: "posts")
        var stored = 0
        var host: [Double] = []
        var floor: [Double] = []
        for _ in 0..<rounds {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<iterations {
                runtime.runBefore(event, handlers: handlers) { outcome in
                    if case .proceed(let data) = outcome, data["slug"] == "hello, moonbase" { stored += 1 }
                }
            }
            host.append(Double(DispatchTime.now().uptimeNanoseconds - start) / Double(iterations))
            floor.append(Double(mb_floor_before(iterations)) / Double(iterations))
        }
        guard stored == iterations * rounds else { fatalError("not every before-hook run stored its change") }
        print("before-hook: 1 handler changing the data, read back; \(iterations) events per round, \(rounds) rounds, median ns/event")
        print("moonbase ns  C floor ns  ratio")
        print(String(format: "%11.0f  %10.0f  %5.2f", median(host), median(floor), median(host) / median(floor)))
    }

    static func median(_ values: [Double]) -> Double {
        values.sorted()[values.count / 2]
    }
}
