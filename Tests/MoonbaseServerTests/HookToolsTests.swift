import Foundation
import HookHost
import MoonbaseTestSupport
import Testing

/// `hooks types`, `hooks new` and the lint they set up, as a hook author uses them.
@Suite struct HookToolsTests {
    static let luacheck = "/usr/bin/luacheck"
    static let shippedHooks = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../hooks").standardized.path

    func moonbase(_ arguments: [String], in directory: String? = nil) async throws -> CommandLineTests.Run {
        try await CommandLineTests.moonbase(arguments, in: directory)
    }

    /// luacheck is part of `make test` (the Makefile installs it): its absence is a failure.
    func luacheck(_ arguments: [String], in directory: String) async throws -> CommandLineTests.Run {
        try #require(FileManager.default.isExecutableFile(atPath: Self.luacheck), "luacheck is missing: make deps installs lua-check")
        return try await CommandLineTests.run(Self.luacheck, ["--no-color", "--formatter", "plain"] + arguments, in: directory)
    }

    @Test func typesAreWrittenOnceAndDeclareTheWholeAPI() async throws {
        let folder = try HooksFolder([:])
        defer { folder.remove() }
        let first = try await moonbase(["hooks", "types", "--hooks-dir", folder.path])
        #expect(first.status == 0)
        #expect(first.output.contains("wrote \(folder.path)/.moonbase/moonbase.d.lua"))
        #expect(first.output.contains(".luarc.json") && first.output.contains(".luacheckrc"))
        let again = try await moonbase(["hooks", "types", "--hooks-dir", folder.path])
        #expect(again.output == "\(folder.path): up to date\n", "unchanged files are not rewritten")

        let definitions = try String(contentsOfFile: folder.path + "/.moonbase/moonbase.d.lua", encoding: .utf8)
        for declared in ["function on_record_create(collection, handler, options) end", "function on_hook_failed(handler, options) end",
                         "function reject(message, status) end", "function json.encode(value) end", "json.null = nil",
                         "function log.warn(message, fields) end", "function http.request(request) end",
                         "function webhook.send(url, payload, options) end", "function crypto.hmac_sha256(key, message, encoding) end",
                         "function records.list(collection, query) end", "---@class RecordEvent", "---@field retries? integer"] {
            #expect(definitions.contains(declared), "\(declared)")
        }
        let luarc = try String(contentsOfFile: folder.path + "/.luarc.json", encoding: .utf8)
        #expect(try JSONSerialization.jsonObject(with: Data(luarc.utf8)) is [String: Any])
    }

    /// The editor files in the repository's hooks/ are what the command writes now.
    @Test func shippedHooksCarryTheGeneratedFiles() async throws {
        let copy = NSTemporaryDirectory() + "moonbase-types-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try FileManager.default.copyItem(atPath: Self.shippedHooks, toPath: copy)
        let run = try await moonbase(["hooks", "types", "--hooks-dir", copy])
        #expect(run.output == "\(copy): up to date\n", "run `moonbase hooks types` and commit hooks/")
    }

    @Test func luacheckFlagsMisspelledForbiddenAndOverwrittenGlobals() async throws {
        let folder = try HooksFolder([
            "clean.lua": """
                ---@param event RecordEvent
                function on_post(event) log.info("saw", {id = event.record_id}) end
                on_record_create("posts", on_post)
                """,
            "sloppy.lua": """
                on_record_create("posts", function(event)
                  lgo.info("typo")
                  os.execute("rm -rf /")
                  json = nil
                end)
                """,
        ])
        defer { folder.remove() }
        _ = try await moonbase(["hooks", "types", "--hooks-dir", folder.path])
        let run = try await luacheck(["."], in: folder.path)
        #expect(run.status != 0)
        #expect(!run.output.contains("clean.lua:"), "\(run.output)")
        #expect(run.output.contains("sloppy.lua:2:3: accessing undefined variable 'lgo'"), "\(run.output)")
        #expect(run.output.contains("sloppy.lua:3:3: accessing undefined field 'execute' of global 'os'"), "\(run.output)")
        #expect(run.output.contains("sloppy.lua:4:3: setting read-only global variable 'json'"), "\(run.output)")
        #expect(!run.output.contains(".moonbase"), "the generated definitions are not linted")
    }

    @Test func shippedHooksPassLuacheck() async throws {
        let run = try await luacheck(["."], in: Self.shippedHooks)
        #expect(run.status == 0, "\(run.output)")
    }

    @Test(arguments: HookStarter.Kind.allCases)
    func starterFilesPassHooksTestAndLuacheckAsWritten(_ kind: HookStarter.Kind) async throws {
        let folder = try HooksFolder([:])
        defer { folder.remove() }
        let made = try await moonbase(["hooks", "new", "starter", "--event", kind.rawValue, "--collection", "orders", "--hooks-dir", folder.path])
        #expect(made.status == 0, "\(made.output)")
        let file = folder.path + "/starter.lua"
        let source = try String(contentsOfFile: file, encoding: .utf8)
        #expect(source.contains("---@param event RecordEvent"))
        let tried = try await moonbase(["hooks", "test", file, "--event", kind.testEvent, "--collection", "orders", "--data", #"{"title":"Hello"}"#])
        #expect(tried.status == 0, "\(tried.output)")
        #expect(tried.output.contains("✓"), "\(tried.output)")
        _ = try await moonbase(["hooks", "types", "--hooks-dir", folder.path])
        #expect(try await luacheck(["."], in: folder.path).status == 0)
    }

    @Test func starterNamesAndExistingFilesAreRefused() async throws {
        let folder = try HooksFolder(["taken.lua": "-- mine"])
        defer { folder.remove() }
        for (name, message) in [("_util", "names starting with _ are modules"), ("a b", "only letters, digits, _ and -")] {
            let run = try await moonbase(["hooks", "new", name, "--hooks-dir", folder.path])
            #expect(run.status != 0 && run.output.contains(message), "\(run.output)")
        }
        let taken = try await moonbase(["hooks", "new", "taken", "--hooks-dir", folder.path])
        #expect(taken.status != 0 && taken.output.contains("taken.lua exists already"), "\(taken.output)")
        #expect(try String(contentsOfFile: folder.path + "/taken.lua", encoding: .utf8) == "-- mine")
        let badEvent = try await moonbase(["hooks", "new", "x", "--event", "created-ish", "--hooks-dir", folder.path])
        #expect(badEvent.status != 0 && badEvent.output.contains("created-ish"), "\(badEvent.output)")
    }
}
