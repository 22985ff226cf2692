import Foundation
import MoonbaseJSON
import MoonbaseTestSupport
import Testing

/// Reloads of a real `moonbase serve` process (SPEC section 13): `kill -HUP`, `moonbase hooks
/// reload`, and (in `HookWatchTimingTests`) `serve --watch`.
@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary)))
struct HookReloadProcessTests {
    static func stamp(_ value: String) -> String { HookReloadTests.stamp(value) }

    /// A served folder with `a.lua` stamping "v1", the `posts` collection made.
    static func withServe(extra: [String] = [], _ body: (CrashTests.Server, HooksFolder) async throws -> Void) async throws {
        let folder = try HooksFolder(["a.lua": stamp("v1")])
        defer { folder.remove() }
        let root = (folder.path as NSString).deletingLastPathComponent
        let server = try CrashTests.Server(data: root + "/data", hooks: folder.path, log: root + "/serve.log", extra: extra)
        defer { server.terminate() }
        #expect(try await CrashTests.request("POST", port: server.port, "/collections", body: #"{"name":"posts"}"#).0 == 201)
        try await body(server, folder)
    }

    static func stampOfANewRecord(_ server: CrashTests.Server) async throws -> String? {
        let (status, body) = try await CrashTests.request("POST", port: server.port, "/collections/posts/records", body: "{}")
        #expect(status == 201)
        return body?["stamp"]?.string
    }

    static func generation(_ server: CrashTests.Server) async throws -> JSONValue? {
        guard case .array(let files)? = try await CrashTests.request("GET", port: server.port, "/hooks").1 else { return nil }
        return files.first?["generation"]
    }

    static func logLines(_ server: CrashTests.Server, containing text: String) -> [Substring] {
        ((try? String(contentsOfFile: server.log, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.contains(text) }
    }

    @Test func hangupReloadsAndARefusalIsLogged() async throws {
        try await Self.withServe { server, folder in
            #expect(try await Self.stampOfANewRecord(server) == "v1")
            try Self.stamp("v2").write(toFile: folder.path + "/a.lua", atomically: true, encoding: .utf8)
            kill(server.process.processIdentifier, SIGHUP)
            #expect(try await eventually { try await Self.generation(server) == 2 })
            #expect(try await Self.stampOfANewRecord(server) == "v2")
            let reloaded = Self.logLines(server, containing: "hooks reloaded")
            #expect(reloaded.count == 1 && reloaded[0].contains("by=signal") && reloaded[0].contains("changed=hooks/a.lua"), "\(reloaded)")

            try "before_record_create('posts', function(e)".write(toFile: folder.path + "/a.lua", atomically: true, encoding: .utf8)
            kill(server.process.processIdentifier, SIGHUP)
            #expect(await eventually { !Self.logLines(server, containing: "hook reload refused").isEmpty })
            #expect(Self.logLines(server, containing: "hook reload refused").first?.contains("file=hooks/a.lua") == true)
            #expect(try await Self.stampOfANewRecord(server) == "v2")
            guard case .array(let files)? = try await CrashTests.request("GET", port: server.port, "/hooks").1 else {
                Issue.record("no listing"); return
            }
            #expect(files.first?["generation"] == 2 && files.first?["last_reload"]?["by"] == "signal")
            #expect(server.process.isRunning)
        }
    }

    @Test func theReloadCommandAsksTheServer() async throws {
        try await Self.withServe { server, folder in
            try "on_record_create('posts', function() end".write(toFile: folder.path + "/b.lua", atomically: true, encoding: .utf8)
            let url = "http://127.0.0.1:\(server.port)"
            let reloaded = try await CommandLineTests.moonbase(["hooks", "reload", "--url", url, "--token", "crash"])
            #expect(reloaded.status == 0 && reloaded.output.contains("reloaded: generation 2, 1 file loaded, 1 failed"), "\(reloaded.output)")
            #expect(reloaded.output.contains("hooks/b.lua:1"))

            try "before_record_create('posts', function(e)".write(toFile: folder.path + "/a.lua", atomically: true, encoding: .utf8)
            let refused = try await CommandLineTests.moonbase(["hooks", "reload", "--url", url, "--token", "crash"])
            #expect(refused.status != 0 && refused.output.contains("409") && refused.output.contains("hooks/a.lua"), "\(refused.output)")
            let wrongToken = try await CommandLineTests.moonbase(["hooks", "reload", "--url", url, "--token", "nope"])
            #expect(wrongToken.status != 0 && wrongToken.output.contains("401"), "\(wrongToken.output)")
            #expect(try await Self.generation(server) == 2)
            let listed = try await CommandLineTests.moonbase(["hooks", "list", "--url", url, "--token", "crash"])
            #expect(listed.output.contains("⚠ the last reload (api, ") && listed.output.contains("(generation 2, loaded at "), "\(listed.output)")
        }
    }
}

/// `serve --watch` reloads once per burst of saves, after 200 ms of quiet, and never for files
/// that are not `*.lua` hook sources.
@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary)))
struct HookWatchTimingTests {
    static func reloads(_ server: CrashTests.Server) -> Int {
        HookReloadProcessTests.logLines(server, containing: "hooks reloaded").count
    }

    static func write(_ text: String, _ path: String) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    @Test func anEditorSaveBurstIsOneReloadAndSwapFilesNone() async throws {
        try await HookReloadProcessTests.withServe(extra: ["--watch"]) { server, folder in
            let dir = folder.path
            #expect(await eventually { !HookReloadProcessTests.logLines(server, containing: "watching the hooks folder").isEmpty })
            // What an editor writes beside a file: no reload.
            try Self.write("swap", dir + "/.a.lua.swp")
            try Self.write("backup", dir + "/a.lua~")
            try Self.write("probe", dir + "/4913")
            try Self.write("notes", dir + "/README.md")
            try await Task.sleep(for: .milliseconds(700))
            #expect(Self.reloads(server) == 0)

            // vim's save: probe, back up by rename, write anew (in several writes), remove the backup.
            try Self.write("", dir + "/4913")
            try FileManager.default.removeItem(atPath: dir + "/4913")
            try FileManager.default.moveItem(atPath: dir + "/a.lua", toPath: dir + "/a.lua.bak~")
            try Self.write("-- being written", dir + "/a.lua")
            try await Task.sleep(for: .milliseconds(60))
            try Self.write(HookReloadProcessTests.stamp("v2"), dir + "/a.lua")
            try await Task.sleep(for: .milliseconds(60))
            try FileManager.default.removeItem(atPath: dir + "/a.lua.bak~")
            #expect(await eventually { Self.reloads(server) == 1 })
            try await Task.sleep(for: .milliseconds(500))
            #expect(Self.reloads(server) == 1, "a burst of saves is one reload")
            #expect(HookReloadProcessTests.logLines(server, containing: "hooks reloaded").first?.contains("by=watch") == true)
            #expect(try await HookReloadProcessTests.stampOfANewRecord(server) == "v2")

            // A save by rename (write elsewhere, move over the file), then an in-place save.
            try Self.write(HookReloadProcessTests.stamp("v3"), dir + "/.a.lua.tmp")
            try FileManager.default.moveItem(atPath: dir + "/.a.lua.tmp", toPath: dir + "/b.lua")
            #expect(await eventually { Self.reloads(server) == 2 })
            try Self.write(HookReloadProcessTests.stamp("v4"), dir + "/a.lua")
            #expect(await eventually { Self.reloads(server) == 3 })
            #expect(try await HookReloadProcessTests.stampOfANewRecord(server) == "v3") // b.lua runs after a.lua
            try Self.write("more swap", dir + "/.b.lua.swp")
            try await Task.sleep(for: .milliseconds(700))
            #expect(Self.reloads(server) == 3)
            // A shared module is a *.lua file of the folder too: files that require it load it anew.
            try Self.write("return {}", dir + "/_shared.lua")
            #expect(await eventually { Self.reloads(server) == 4 })
        }
    }
}
