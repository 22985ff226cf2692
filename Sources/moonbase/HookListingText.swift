import Foundation
import MoonbaseJSON
import MoonbaseServer

/// The listing (SPEC section 10) as a table for people.
enum HookListingText {
    static func render(_ listing: JSONValue, withStats: Bool) -> String {
        guard case .array(let files) = listing else { return "" }
        var out = ""
        var loaded = 0
        var failed = 0
        for file in files {
            let name = file.field("file")?.text ?? "?"
            if file.field("status") == "failed" {
                failed += 1
                out += "✗ \(name)  FAILED\n    \(file.field("error")?.text ?? "")\n"
                continue
            }
            loaded += 1
            guard case .array(let handlers)? = file.field("handlers") else { continue }
            var routes: [JSONValue] = []
            if case .array(let listed)? = file.field("routes") { routes = listed }
            var crons: [JSONValue] = []
            if case .array(let listed)? = file.field("crons") { crons = listed }
            out += "✓ \(name)  \(handlers.count) handler\(handlers.count == 1 ? "" : "s")"
                + (routes.isEmpty ? "" : ", \(routes.count) route\(routes.count == 1 ? "" : "s")")
                + (crons.isEmpty ? "" : ", \(crons.count) cron\(crons.count == 1 ? "" : "s")") + "\n"
            if let refusal = file.field("last_reload") {
                out += "    ⚠ the last reload (\(refusal.field("by")?.text ?? "?"), \(refusal.field("at")?.text ?? "?")) was refused: "
                    + "\(refusal.field("error")?.text ?? "")\n"
            }
            for handler in handlers {
                let collection: String
                switch handler.field("collection") {
                case .string(let one)?: collection = one
                case .array(let many)?: collection = many.compactMap(\.text).joined(separator: ",")
                default: collection = "*"
                }
                var line = "    \(pad(handler.field("name")?.text ?? "?", 28)) \(pad(handler.field("event")?.text ?? "?", 24)) "
                    + "\(pad(collection, 16)) line \(number(handler.field("line")))"
                if handler.field("async") == .bool(false) { line += "  (async = false)" }
                for option in ["when", "changed"] {
                    if let value = handler.field(option) { line += "  \(option) \(value.serializedString())" }
                }
                out += line + (withStats ? stats(of: handler) : "") + "\n"
            }
            for route in routes {
                let endpoint = "\(route.field("method")?.text ?? "?") \(route.field("path")?.text ?? "?")"
                var line = "    \(pad(route.field("name")?.text ?? "?", 28)) \(pad("route", 24)) \(pad(endpoint, 16)) line \(number(route.field("line")))"
                if route.field("public") == .bool(true) { line += "  (public)" }
                out += line + (withStats ? stats(of: route) : "") + "\n"
            }
            for cron in crons { out += cronLine(cron, withStats: withStats) }
        }
        out += "\(loaded) loaded, \(failed) failed"
        if let generation = files.first?.field("generation"), let at = files.first?.field("loaded_at")?.text { // a server's listing
            out += " (generation \(generation.serializedString()), loaded at \(at))"
        }
        out += "\n"
        return out
    }

    /// The line under a server's listing when its watchdog gave states up: their memory is only
    /// freed by a restart.
    static func abandonedLine(_ abandoned: AbandonedStatesSummary) -> String {
        let megabytes = String(format: "%.1f", Double(abandoned.bytes) / Double(1 << 20))
        let states = abandoned.count == 1 ? "1 Lua state" : "\(abandoned.count) Lua states"
        return "⚠ \(states) given up by the watchdog (a handler busy past twice the wall-clock budget; see its last error) "
            + "hold\(abandoned.count == 1 ? "s" : "") \(megabytes) MiB until the server restarts"
    }

    /// A cron: name, schedule and line; from a server, its next and last run and last error.
    private static func cronLine(_ cron: JSONValue, withStats: Bool) -> String {
        var line = "    \(pad(cron.field("name")?.text ?? "?", 28)) \(pad("cron", 24)) \(pad(cron.field("schedule")?.text ?? "?", 16)) "
            + "line \(number(cron.field("line")))"
        if cron.field("catch_up") == .bool(false) { line += "  (catch_up = false)" }
        if withStats {
            line += "  calls \(number(cron.field("calls"))) errors \(number(cron.field("errors")))"
            line += "\n      next run \(cron.field("next_run")?.text ?? "-")  last run \(cron.field("last_run")?.text ?? "-")"
            if let error = cron.field("last_error")?.text { line += "\n      last error: \(error)" }
        }
        return line + "\n"
    }

    /// A handler's or route's counters (and a route's mean time), and its last error on a line of its own.
    private static func stats(of entry: JSONValue) -> String {
        var text = "  calls \(number(entry.field("calls"))) errors \(number(entry.field("errors")))"
        if case .double(let mean)? = entry.field("latency_ms")?.field("mean") { text += " mean \(mean) ms" }
        if let error = entry.field("last_error")?.text { text += "\n      last error: \(error)" }
        return text
    }

    private static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }

    private static func number(_ value: JSONValue?) -> String {
        if case .int(let n)? = value { return String(n) }
        return "?"
    }
}
