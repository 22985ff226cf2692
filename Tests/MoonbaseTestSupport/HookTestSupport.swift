import Foundation
import HookHost
import HostModules
import Logging
import LuaRuntime
import MoonbaseJSON
import MoonbaseModel
import Synchronization

/// A hooks folder in a temporary directory, removed by `remove()`.
public struct HooksFolder: Sendable {
    public let path: String

    public init(_ files: [String: String]) throws {
        path = NSTemporaryDirectory() + "moonbase-hooks-\(UUID().uuidString)/hooks"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, source) in files {
            try source.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
        }
    }

    /// Loads the folder's hooks with the standard modules (`json`, `log`) and `modules`.
    public func load(states: Int = 1, limits: LuaLimits = .default, modules: [LuaModule] = [],
                     logs: LogCapture = LogCapture()) throws -> LoadedHooks {
        try LoadedHooks.load(directory: HookDirectory(path: path), states: states, limits: limits,
                             modules: standardModules + modules, logger: logs.logger)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
    }
}

/// Collects log lines so tests can assert what a hook printed or what failed.
public final class LogCapture: Sendable {
    public struct Line: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: [String: String]
    }

    private let lines = Mutex<[Line]>([])

    public init() {}

    public var logger: Logger {
        Logger(label: "test") { _ in Handler(capture: self) }
    }

    public var all: [Line] { lines.withLock { $0 } }

    /// The lines with this message.
    public func lines(_ message: String) -> [Line] { all.filter { $0.message == message } }

    func append(_ line: Line) { lines.withLock { $0.append(line) } }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.append(Line(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
        }
    }
}

public func event(_ type: RecordEventType = .created, collection: String = "posts", data: JSONObject = ["title": "Hello"],
                  oldData: JSONObject? = nil, id: String = "evt_1") -> RecordEvent {
    RecordEvent(id: id, type: type, collection: collection, recordID: "rec_1", data: data, oldData: oldData,
              timestamp: "2026-11-21T12:00:00.000Z")
}

extension HookRuntime {
    /// Runs before-handlers that do not wait for the host and returns their decision.
    public func runBefore(_ event: RecordEvent, handlers: [Int]) -> BeforeOutcome {
        var decision: BeforeOutcome?
        runBefore(event, handlers: handlers) { decision = $0 }
        guard let decision else { preconditionFailure("a before-handler waited; drive it through a HookPool") }
        return decision
    }
}

/// Runs blocking work (starting a process and waiting for it) on a thread of its own: blocked
/// cooperative threads would stall every other test's tasks, hooks waiting for the host among them.
public func offCooperativeThreads<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}
