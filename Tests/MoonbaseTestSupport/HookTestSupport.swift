import Foundation
import HookHost
import Logging
import LuaRuntime
import MoonbaseJSON
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

    public func load(states: Int = 1, limits: LuaLimits = .default, logs: LogCapture = LogCapture()) throws -> LoadedHooks {
        try LoadedHooks.load(directory: HookDirectory(path: path), states: states, limits: limits, logger: logs.logger)
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
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
            let merged = self.metadata.merging(metadata ?? [:]) { $1 }
            capture.append(Line(level: level, message: "\(message)", metadata: merged.mapValues { "\($0)" }))
        }
    }
}

public func event(_ type: RecordEventType = .created, collection: String = "posts", data: JSONObject = ["title": "Hello"],
           oldData: JSONObject? = nil) -> HookEvent {
    HookEvent(id: "evt_1", type: type, collection: collection, recordID: "rec_1", data: data, oldData: oldData,
              timestamp: "2026-11-21T12:00:00.000Z")
}
