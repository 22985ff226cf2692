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

    /// The definitions declare exactly the sandbox's own globals and module functions (read back
    /// from the generated .luacheckrc, which lists the environment's globals), and parse as Lua.
    @Test func definitionsDeclareTheSandboxAndNothingElse() async throws {
        let folder = try HooksFolder([:])
        defer { folder.remove() }
        _ = try await moonbase(["hooks", "types", "--hooks-dir", folder.path])
        let definitions = try String(contentsOfFile: folder.path + "/.moonbase/moonbase.d.lua", encoding: .utf8)
        let luacheckrc = try String(contentsOfFile: folder.path + "/.luacheckrc", encoding: .utf8)
        let declared = Set(definitions.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("function ") else { return nil }
            return String(line.dropFirst("function ".count).prefix { $0 != "(" })
        })
        // The sandbox's globals and fields, as luacheck is told them: `name = { fields = { "a", … } }` or `"name"`.
        var sandbox = Set<String>()
        for line in luacheckrc.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if line.hasPrefix("\""), line.hasSuffix("\",") { sandbox.insert(String(line.dropFirst().dropLast(2))) }
            if let open = line.range(of: " = { fields = { ") {
                let table = String(line[..<open.lowerBound])
                for field in line[open.upperBound...].split(separator: ",") {
                    let name = field.trimmingCharacters(in: CharacterSet(charactersIn: " \"}"))
                    if !name.isEmpty { sandbox.insert(table + "." + name) }
                }
            }
        }
        #expect(declared.isSubset(of: sandbox), "declared but not in the sandbox: \(declared.subtracting(sandbox).sorted())")
        let hostGlobals = sandbox.filter { name in
            ["json.", "log.", "http.", "webhook.", "crypto.", "records."].contains { name.hasPrefix($0) }
                || name.hasPrefix("on_") || name.hasPrefix("before_") || ["route", "reject"].contains(name)
        }
        #expect(hostGlobals.subtracting(declared).subtracting(["json.null"]).isEmpty,
                "in the sandbox but not declared: \(hostGlobals.subtracting(declared).sorted())")
        #expect(definitions.contains("json.null = nil"))
        for file in ["/.moonbase/moonbase.d.lua", "/.luacheckrc"] { // one at a time: Debian's luac crashes on two
            let parsed = try await CommandLineTests.run("/usr/bin/luac5.4", ["-p", folder.path + file])
            #expect(parsed.status == 0, "\(file): \(parsed.output)")
        }
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
                  io.open("/etc/passwd")
                end)
                on_recrod_update("posts", function(event) end)
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
        #expect(run.output.contains("sloppy.lua:5:3: accessing undefined variable 'io'"), "\(run.output)")
        #expect(run.output.contains("sloppy.lua:7:1: accessing undefined variable 'on_recrod_update'"), "\(run.output)")
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

    /// Every shipped record hook passes `hooks test` as the README shows it (with `--with-db`
    /// where it uses `records`), and says so when a collection it needs is missing.
    @Test(arguments: [
        ("audit.lua", ["--event", "created", "--collection", "posts"], "✓ audit"),
        ("counters.lua", ["--event", "created", "--collection", "posts", "--data", #"{"author":"ann"}"#, "--with-db", "--collections", "stats"],
         "✓ count_posts_per_author"),
        ("counters.lua", ["--event", "created", "--collection", "posts", "--data", #"{"author":"ann"}"#, "--with-db"],
         "create the stats collection"),
        ("notifications.lua", ["--event", "updated", "--collection", "users", "--data", #"{"email":"b@x"}"#, "--old-data", #"{"email":"a@x"}"#],
         "user changed e-mail"),
        ("notifications.lua", ["--event", "deleted", "--collection", "comments"], "✓ deletion_notice"),
        ("search.lua", ["--event", "created", "--collection", "products", "--data", #"{"name":"Lamp"}"#, "--with-db", "--collections", "search_index"],
         "✓ sync_search_index"),
        ("search.lua", ["--event", "created", "--collection", "products", "--with-db"], "create the search_index collection"),
        ("validate.lua", ["--event", "created", "--collection", "posts", "--data", #"{"title":"Hello, World"}"#], #""slug":"hello-world""#),
        ("order_paid.lua", ["--event", "updated", "--collection", "orders", "--data", #"{"status":"paid","total":10}"#,
                            "--old-data", #"{"status":"open","total":10}"#], "order paid"),
        ("webhooks.lua", ["--event", "created", "--collection", "orders"], "FULFILLMENT_URL is not set"),
    ])
    func shippedExamplesPassHooksTest(_ file: String, _ arguments: [String], _ expected: String) async throws {
        let run = try await moonbase(["hooks", "test", Self.shippedHooks + "/" + file] + arguments)
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains(expected), "\(run.output)")
        #expect(!run.output.contains("✗"), "\(run.output)")
    }

    @Test func allRunsEveryFilesHandlersWithTheirFiles() async throws {
        let run = try await moonbase(["hooks", "test", "--all", "--hooks-dir", Self.shippedHooks, "--event", "created", "--collection", "posts",
                                      "--data", #"{"title":"Hi","author":"ann"}"#, "--with-db", "--collections", "stats"])
        #expect(run.status == 0, "\(run.output)")
        for line in ["✓ before-hooks: the write goes ahead", "✓ hooks/audit.lua: audit", "✓ hooks/counters.lua: count_posts_per_author",
                     "✓ hooks/notifications.lua: on_new_post"] {
            #expect(run.output.contains(line), "\(line)")
        }
        let both = try await moonbase(["hooks", "test", Self.shippedHooks + "/audit.lua", "--all", "--event", "created", "--collection", "posts"])
        #expect(both.status != 0 && both.output.contains("give one hook file, or --all"), "\(both.output)")
        let stray = try await moonbase(["hooks", "test", Self.shippedHooks + "/audit.lua", "--collections", "x", "--event", "created", "--collection", "posts"])
        #expect(stray.status != 0 && stray.output.contains("--collections goes with --with-db"), "\(stray.output)")
    }

    /// With a database, `records` works, and the record is stored as the server would store it.
    @Test func withDatabaseHandlersReadAndWriteRecords() async throws {
        let folder = try HooksFolder(["mirror.lua": """
            on_record_update("posts", function(event)
              local current = assert(records.get("posts", event.record_id))
              local copy = assert(records.create("copies", {title = current.title, was = event.old_data.title}))
              log.info("mirrored", {title = current.title, copy = copy.title, was = copy.was})
            end)
            """])
        defer { folder.remove() }
        let run = try await moonbase(["hooks", "test", folder.path + "/mirror.lua", "--event", "updated", "--collection", "posts",
                                      "--data", #"{"id":"p1","title":"new"}"#, "--old-data", #"{"title":"old"}"#, "--with-db", "--collections", "copies"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("copy=new") && run.output.contains("title=new") && run.output.contains("was=old"), "\(run.output)")
        let offline = try await moonbase(["hooks", "test", folder.path + "/mirror.lua", "--event", "updated", "--collection", "posts"])
        #expect(offline.status == 1 && offline.output.contains("hooks test --with-db gives it one"), "\(offline.output)")
    }
}
