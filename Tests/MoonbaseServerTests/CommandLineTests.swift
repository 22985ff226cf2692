import Foundation
import Hummingbird
import HummingbirdTesting
import MoonbaseServer
import MoonbaseTestSupport
import Testing

/// The `moonbase` binary as a user runs it: `hooks list` and `hooks test`.
@Suite struct CommandLineTests {
    struct Run {
        var status: Int32
        var output: String
    }

    static func moonbase(_ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil) async throws -> Run {
        try await run(CrashTests.binary, arguments, in: directory, environment: environment)
    }

    /// Runs `executable` with `arguments` (in `directory`, with `environment` in place of this
    /// process's if given) and collects its output and status.
    static func run(_ executable: String, _ arguments: [String], in directory: String? = nil,
                    environment: [String: String]? = nil) async throws -> Run {
        try await offCooperativeThreads { try runWaiting(executable, arguments, in: directory, environment: environment) }
    }

    private static func runWaiting(_ executable: String, _ arguments: [String], in directory: String?,
                                   environment: [String: String]?) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary)))
    func hooksListShowsLoadedAndFailedFilesAndExitsOneOnFailure() async throws {
        let folder = try HooksFolder([
            "good.lua": "function on_post(e) end\non_record_create('posts', on_post, {retries = 2})",
            "kinds.lua": """
                on_record_update("orders", function() end, {name = "paid", when = {status = "paid"}, changed = {"status"}})
                route("POST", "/hooks/{provider}", function() end, {name = "receive", public = true})
                """,
            "broken.lua": "x = = 1",
        ])
        defer { folder.remove() }
        let table = try await Self.moonbase(["hooks", "list", "--hooks-dir", folder.path])
        #expect(table.status == 1)
        #expect(table.output.contains("✗ hooks/broken.lua  FAILED") && table.output.contains("hooks/broken.lua:1: unexpected symbol near '='"))
        #expect(table.output.contains("✓ hooks/good.lua  1 handler") && table.output.contains("on_post"))
        #expect(table.output.contains("✓ hooks/kinds.lua  1 handler, 1 route"))
        #expect(table.output.contains(#"when {"status":"paid"}  changed ["status"]"#))
        #expect(table.output.contains("receive") && table.output.contains("POST /hooks/{provider}") && table.output.contains("(public)"))
        #expect(table.output.contains("2 loaded, 1 failed"))
        let json = try await Self.moonbase(["hooks", "list", "--hooks-dir", folder.path, "--json"])
        #expect(json.output.contains(#""status":"failed""#) && json.output.contains(#""retries":2"#))

        try FileManager.default.removeItem(atPath: folder.path + "/broken.lua")
        #expect(try await Self.moonbase(["hooks", "list", "--hooks-dir", folder.path]).status == 0)
        #expect(try await Self.moonbase(["hooks", "list", "--hooks-dir", folder.path + "/missing"]).output.contains("does not exist"))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary)))
    func hooksTestRunsBeforeAndAfterHandlersOnASyntheticEvent() async throws {
        let folder = try HooksFolder(["posts.lua": """
            before_record_create("posts", function(e)
              if not e.data.title then reject("title is required") end
              e.data.slug = string.lower(e.data.title)
            end)
            on_record_create("posts", function(e) print("created " .. e.data.slug) end, {name = "announce"})
            on_record_create("posts", function(e) if e.data.title == "boom" then error("exploded") end end, {name = "fragile"})
            on_record_create("posts", function(e) print("featured " .. e.data.slug) end, {name = "featured", when = {featured = true}})
            """])
        defer { folder.remove() }
        let file = folder.path + "/posts.lua"
        let ok = try await Self.moonbase(["hooks", "test", file, "--event", "created", "--collection", "posts", "--data", #"{"title":"Hello"}"#])
        #expect(ok.status == 0)
        #expect(ok.output.contains(#"the write goes ahead with {"title":"Hello","slug":"hello"}"#))
        #expect(ok.output.contains("created hello") && ok.output.contains("✓ announce") && ok.output.contains("✓ fragile"))
        #expect(ok.output.contains("- featured (line 7): skipped by its when/changed") && !ok.output.contains("featured hello"))
        let featured = try await Self.moonbase(["hooks", "test", file, "--event", "created", "--collection", "posts",
                                                "--data", #"{"title":"Hello","featured":true}"#])
        #expect(featured.output.contains("featured hello") && featured.output.contains("✓ featured"))

        let refused = try await Self.moonbase(["hooks", "test", file, "--event", "created", "--collection", "posts", "--data", "{}"])
        #expect(refused.status == 0 && refused.output.contains("refused with 422: title is required"))

        let failed = try await Self.moonbase(["hooks", "test", file, "--event", "created", "--collection", "posts", "--data", #"{"title":"boom"}"#])
        #expect(failed.status == 1 && failed.output.contains("✗ fragile") && failed.output.contains("exploded"))

        let other = try await Self.moonbase(["hooks", "test", file, "--event", "deleted", "--collection", "pages"])
        #expect(other.status == 0 && other.output.contains("no handler"))

        let malformed = try await Self.moonbase(["hooks", "test", file, "--event", "created", "--collection", "posts", "--data", "{"])
        #expect(malformed.status != 0 && malformed.output.contains("--data is not valid JSON"))
    }

    /// `hooks test` builds the server's event: a whole record in `data`, a real record id, one
    /// event id, and for an update without `--old-data` the same fields as the old version.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary)))
    func hooksTestBuildsTheEventTheServerBuilds() async throws {
        let folder = try HooksFolder(["shape.lua": """
            local function show(e)
              print(table.concat({"shape", e.type, e.record_id, tostring(e.data.id == e.record_id), e.data.collection,
                tostring(e.data.created ~= nil), tostring(e.data.updated ~= nil), e.old_data and e.old_data.title or "-",
                tostring(e.id:match("^evt_") ~= nil)}, " "))
            end
            on_any_event(show)
            """])
        defer { folder.remove() }
        let file = folder.path + "/shape.lua"
        let created = try await Self.moonbase(["hooks", "test", file, "--event", "created", "--collection", "posts", "--data", #"{"title":"a"}"#])
        // `print` goes to the log: "… [LuaRuntime] shape …".
        let line = try #require(created.output.split(separator: "\n").compactMap { $0.split(separator: "] shape ").last.map { "shape " + $0 } }
            .first { $0.hasPrefix("shape record") })
        let parts = line.split(separator: " ")
        #expect(parts.count == 9 && parts[2].count == 15, "a real record id: \(line)")
        #expect(parts[3...] == ["true", "posts", "true", "true", "-", "true"])
        let updated = try await Self.moonbase(["hooks", "test", file, "--event", "updated", "--collection", "posts", "--data", #"{"id":"r1","title":"b"}"#])
        #expect(updated.output.contains("shape record.updated r1 true posts true true b true"))
        let withOld = try await Self.moonbase(["hooks", "test", file, "--event", "updated", "--collection", "posts",
                                              "--data", #"{"title":"b"}"#, "--old-data", #"{"title":"a"}"#])
        #expect(withOld.output.contains(" a true"))

        let shipped = try await Self.moonbase(["hooks", "test", "hooks/notifications.lua", "--event", "updated", "--collection", "users",
                                               "--data", #"{"email":"a@example.com"}"#])
        #expect(shipped.status == 0, "\(shipped.output)")

        let module = try await Self.moonbase(["hooks", "test", "hooks/_utils.lua", "--event", "created", "--collection", "posts"])
        #expect(module.status != 0 && module.output.contains("hooks/_utils.lua is a module") && module.output.contains(#"require("_utils")"#))
    }

    /// Client commands take the token from the data folder and say plainly when no server is there.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary)))
    func clientCommandsFindTheTokenAndSayWhenNoServerAnswers() async throws {
        let folder = try HooksFolder([:])
        defer { folder.remove() }
        let configuration = ServerConfiguration(folder, token: nil)
        let data = configuration.dataDirectory
        let server = try MoonbaseServer(configuration: configuration, logger: LogCapture().logger) // generates a token
        try await server.application().test(.live) { client in
            let url = "http://127.0.0.1:\(try #require(client.port))"
            let listed = try await Self.moonbase(["hooks", "deliveries", "--url", url, "--data", data])
            #expect(listed.status == 0 && listed.output.contains("0 deliveries"), "\(listed.output)")
            let hooks = try await Self.moonbase(["hooks", "list", "--url", url, "--data", data])
            #expect(hooks.status == 0 && hooks.output.contains("answered by node 127.0.0.1:"), "\(hooks.output)")
            let wrong = try await Self.moonbase(["hooks", "deliveries", "--url", url, "--data", data, "--token", "nope"])
            #expect(wrong.status != 0 && wrong.output.contains("wrong admin token"))
        }
        let nobody = try await Self.moonbase(["hooks", "deliveries", "--url", "http://127.0.0.1:9", "--data", data])
        #expect(nobody.status != 0 && nobody.output.contains("no server at http://127.0.0.1:9"), "\(nobody.output)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary)))
    func hooksTestReachesOutForRealButHasNoRecords() async throws {
        try await withTestServer { port in
            let folder = try HooksFolder(["calls.lua": """
                on_record_create("orders", function(e)
                  local r = assert(http.get("http://127.0.0.1:\(port)/json"))
                  print("answered " .. r.status .. " " .. r.json.hello)
                end, {name = "calls_out"})
                on_record_create("orders", function(e) records.get("orders", e.record_id) end, {name = "reads"})
                """])
            defer { folder.remove() }
            let run = try await Self.moonbase(["hooks", "test", folder.path + "/calls.lua", "--event", "created", "--collection", "orders"])
            #expect(run.status == 1)
            #expect(run.output.contains("answered 200 world") && run.output.contains("✓ calls_out"))
            #expect(run.output.contains("✗ reads") && run.output.contains("records.get is not available: this command runs without a database"))
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary)),
          arguments: [(["--hook-backlog", "0"], "--hook-backlog must be at least 1"),
                      (["--hook-concurrency", "0"], "--hook-concurrency must be at least 1"),
                      (["--hook-retry-schedule", "1,x"], "--hook-retry-schedule takes whole seconds"),
                      (["--sync", "fast"], "--sync must be normal or full, not 'fast'"),
                      (["--sync", "FULL"], "--sync must be normal or full, not 'FULL'")])
    func serveRefusesBadSettingsBeforeStarting(flags: [String], message: String) async throws {
        let data = NSTemporaryDirectory() + "moonbase-flags-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let run = try await Self.moonbase(["serve", "--port", "0", "--data", data] + flags)
        #expect(run.status != 0 && run.output.contains(message))
        #expect(!FileManager.default.fileExists(atPath: data), "nothing was created")
    }
}
