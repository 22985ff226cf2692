import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MoonbaseJSON
import MoonbaseTestSupport
import Synchronization
import Testing

/// At-least-once delivery across `kill -9`: a real `moonbase serve` process takes a flood of
/// writes with a slow after-hook, is killed three times in the middle and restarted; every
/// write that returned 2xx is stored and its event delivered, with few duplicates. The backlog
/// held in memory is kept small (`--hook-backlog 200`), so most of it waits in the store and is
/// read back from there, across the kills too.
@Suite(.serialized) struct CrashTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized
    static let binary = root.appendingPathComponent(".build/debug/moonbase").path

    final class Server: @unchecked Sendable { // killed from one writer task, once
        let process = Process()
        let log: String
        var port = 0

        /// `serve` with the crash tests' settings and `extra` arguments after them.
        init(data: String, hooks: String, log: String, extra: [String] = []) throws {
            self.log = log
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.executableURL = URL(fileURLWithPath: CrashTests.binary)
            process.arguments = ["serve", "--port", "0", "--data", data, "--hooks-dir", hooks, "--admin-token", "crash", "--hook-workers", "2",
                                 "--hook-concurrency", "64", "--hook-backlog", "200"] + extra
            process.standardError = FileHandle(forWritingAtPath: log)
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            for _ in 0..<500 {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                if let line = text.split(separator: "\n").first(where: { $0.contains("moonbase ready") }),
                   let range = line.range(of: #"address=[^ ]*:(\d+)"#, options: .regularExpression),
                   let port = Int(line[range].split(separator: ":").last ?? "") {
                    self.port = port
                    return
                }
                Thread.sleep(forTimeInterval: 0.02)
            }
            throw CrashTestError("the server did not get ready: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }

        func kill() {
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        func terminate() {
            process.terminate()
            process.waitUntilExit()
        }
    }

    struct CrashTestError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func request(_ method: String, port: Int, _ path: String, body: String? = nil) async throws -> (Int, JSONValue?) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/api/v1\(path)")!)
        request.httpMethod = method
        request.setValue("Bearer crash", forHTTPHeaderField: "Authorization")
        request.httpBody = body.map { Data($0.utf8) }
        request.timeoutInterval = 10
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data.isEmpty ? nil : try? JSONValue.parse(Array(data)))
    }

    /// Writes from 16 tasks until `count` more writes have succeeded (then kills the server, if
    /// given, with writes still in flight); returns the ids of the records that were created.
    /// What the writers of one flood share.
    final class Flood: Sendable {
        private let created = Mutex<[String]>([])
        private let stopped = Mutex(false)

        var isStopped: Bool { stopped.withLock { $0 } }
        var ids: [String] { created.withLock { $0 } }

        /// Adds a created record; true for the one call that reaches `count` first.
        func add(_ id: String, stopAt count: Int) -> Bool {
            let total = created.withLock { ids -> Int in
                ids.append(id)
                return ids.count
            }
            return total >= count && stopped.withLock { done -> Bool in
                defer { done = true }
                return !done
            }
        }
    }

    static func flood(port: Int, count: Int, killing server: Server) async -> [String] {
        let flood = Flood()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    while !flood.isStopped {
                        guard let (status, body) = try? await request("POST", port: port, "/collections/posts/records", body: #"{"title":"t"}"#),
                              status == 201, case .object(let object)? = body, case .string(let id)? = object["id"] else { return }
                        if flood.add(id, stopAt: count) { server.kill() } // the other writers are still sending
                    }
                }
            }
        }
        return flood.ids
    }

    /// `delivered <event id> <record id>` lines of every run's log.
    static func deliveries(_ logs: [String]) -> [(event: String, record: String)] {
        logs.flatMap { path in
            ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
                guard let range = line.range(of: #"delivered evt_[a-z0-9_]+ [a-z0-9]+"#, options: .regularExpression) else { return nil }
                let parts = line[range].split(separator: " ")
                return (String(parts[1]), String(parts[2]))
            }
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary)))
    func everyAcknowledgedWriteIsDeliveredAcrossKills() async throws {
        let work = NSTemporaryDirectory() + "moonbase-crash-\(UUID().uuidString)"
        let hooks = work + "/hooks"
        try FileManager.default.createDirectory(atPath: hooks, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        try """
            on_record_create("posts", function(e)
              local t = os.clock() while os.clock() - t < 0.005 do end -- slower than the writes: a backlog at each kill
              print("delivered " .. e.id .. " " .. e.record_id)
            end)
            """.write(toFile: hooks + "/slow.lua", atomically: true, encoding: .utf8)

        var logs: [String] = []
        var acknowledged: [String] = []
        for (run, killAfter) in [700, 700, 700].enumerated() {
            let log = work + "/run\(run).log"
            logs.append(log)
            let server = try await offCooperativeThreads { try Server(data: work + "/data", hooks: hooks, log: log) }
            if run == 0 { _ = try await Self.request("POST", port: server.port, "/collections", body: #"{"name":"posts"}"#) }
            acknowledged += await Self.flood(port: server.port, count: killAfter, killing: server)
        }
        #expect(acknowledged.count >= 2000)

        let finalLog = work + "/final.log"
        logs.append(finalLog)
        let final = try await offCooperativeThreads { try Server(data: work + "/data", hooks: hooks, log: finalLog) }
        defer { final.terminate() }
        let wanted = Set(acknowledged)
        var delivered: [(event: String, record: String)] = []
        for _ in 0..<600 where !wanted.isSubset(of: Set(delivered.map(\.record))) {
            try await Task.sleep(for: .milliseconds(100))
            delivered = Self.deliveries(logs)
        }
        let (_, page) = try await Self.request("GET", port: final.port, "/collections/posts/records?per_page=1")
        guard case .object(let object)? = page, case .int(let stored)? = object["total_items"] else {
            Issue.record("no listing"); return
        }
        #expect(stored >= Int64(wanted.count), "no acknowledged write is missing")
        let missing = wanted.subtracting(delivered.map(\.record))
        #expect(missing.isEmpty, "acknowledged writes whose event was never delivered: \(missing.count)")
        let events = delivered.map(\.event)
        let duplicates = events.count - Set(events).count
        #expect(duplicates <= 3 * 64, "at most the deliveries under way at each of the 3 kills (--hook-concurrency 64) run twice (\(duplicates))")
        let recovered = logs.dropFirst().compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }.filter { $0.contains("taking up unfinished hook deliveries") }
        #expect(!recovered.isEmpty, "the kills left deliveries unfinished, and a restart took them up")
    }
}
