import Foundation
import HookHost
import MoonbaseTestSupport
import LuaRuntime
import MoonbaseJSON
import Testing

@Suite struct HookLoadingTests {
    @Test func filesLoadInBytewiseOrderSkippingModulesAndDotFiles() throws {
        let folder = try HooksFolder([
            "b.lua": "on_record_create('posts', function() end)",
            "A.lua": "on_record_create('posts', function() end)",
            "a.lua": "on_record_create('posts', function() end)",
            "_utils.lua": "return {}",
            ".hidden.lua": "error('must not load')",
            "notes.txt": "not lua",
        ])
        defer { folder.remove() }
        try FileManager.default.createDirectory(atPath: folder.path + "/sub", withIntermediateDirectories: true)
        try "error('subfolders are not scanned')".write(toFile: folder.path + "/sub/x.lua", atomically: true, encoding: .utf8)
        let hooks = try folder.load()
        #expect(hooks.catalog.files.map(\.file) == ["hooks/A.lua", "hooks/a.lua", "hooks/b.lua"])
        #expect(hooks.catalog.files.allSatisfy { $0.status == .loaded })
    }

    @Test func brokenFilesFailAloneAndOthersLoad() throws {
        let folder = try HooksFolder([
            "1_syntax.lua": "on_record_create('posts', function() end)\nlocal x = = 1",
            "2_runtime.lua": "on_record_create('posts', function() end)\nlocal t = nil\nprint(t.x)",
            "3_notfunction.lua": "on_record_create('posts', 'not a function')",
            "4_loop.lua": "on_record_create('posts', function() end)\nwhile true do end",
            "5_badoption.lua": "on_record_create('posts', function() end, {colour = 'red'})",
            "6_badcollection.lua": "on_record_create(42, function() end)",
            "7_good.lua": "function on_post(e) end\non_record_create('posts', on_post)",
        ])
        defer { folder.remove() }
        let logs = LogCapture()
        let hooks = try folder.load(limits: LuaLimits(instructions: 1_000_000, wallClock: .seconds(5), memoryBytes: 32 << 20), logs: logs)
        let files = hooks.catalog.files
        #expect(files.map(\.status) == [.failed, .failed, .failed, .failed, .failed, .failed, .loaded])
        #expect(files[0].error?.hasPrefix("hooks/1_syntax.lua:2:") == true)
        #expect(files[1].error?.hasPrefix("hooks/2_runtime.lua:3: attempt to index a nil value") == true)
        #expect(files[2].error == "hooks/3_notfunction.lua:1: on_record_create: handler must be a function (got string)")
        #expect(files[3].error?.contains("hook exceeded its time budget") == true)
        #expect(files[4].error?.contains("unknown option 'colour'") == true)
        #expect(files[5].error?.contains("collection must be a name, a non-empty list of names or nil (got number)") == true)
        #expect(files[0].handlerIndices.isEmpty && files[0].functions.isEmpty, "all-or-nothing: the handler registered before the error is dropped")
        #expect(hooks.catalog.handlers.map(\.name) == ["on_post"])
        #expect(logs.all.filter { $0.message == "hook file failed" }.count == 6)
    }

    @Test func registrationFormsAndNames() throws {
        let folder = try HooksFolder(["reg.lua": """
            local helper = 1
            function on_new_post(e) end
            on_record_create("posts", on_new_post)
            on_record_update({"posts", "pages"}, function(e) end)
            on_record_delete(nil, function(e) end, {name = "cleanup"})
            on_record_create(function(e) end)
            on_any_event(function(e) end, {async = false})
            before_record_create("posts", function(e) end)
            before_record_update("posts", function(e) end)
            before_record_delete("posts", function(e) end)
            """])
        defer { folder.remove() }
        let catalog = try folder.load().catalog
        let handlers = catalog.handlers
        #expect(handlers.map(\.name) == ["on_new_post", "anonymous@reg.lua:4", "cleanup", "anonymous@reg.lua:6", "anonymous@reg.lua:7",
                                         "anonymous@reg.lua:8", "anonymous@reg.lua:9", "anonymous@reg.lua:10"])
        #expect(handlers.map(\.eventLabel) == ["record.created", "record.updated", "record.deleted", "record.created", "*",
                                               "before:record.created", "before:record.updated", "before:record.deleted"])
        #expect(handlers[1].collections == ["posts", "pages"])
        #expect(handlers[2].collections == nil && handlers[3].collections == nil)
        #expect(handlers[4].async == false && handlers[0].async == true)
        #expect(handlers[0].line == 2)
        #expect(catalog.files[0].functions == ["on_new_post"])
        #expect(catalog.matching(.after, .created, collection: "posts") == [0, 3, 4])
        #expect(catalog.matching(.after, .updated, collection: "pages") == [1, 4])
        #expect(catalog.matching(.before, .deleted, collection: "pages") == [])
    }

    @Test func beforeHooksRejectTheAsyncOption() throws {
        let folder = try HooksFolder(["b.lua": "before_record_create('posts', function() end, {async = false})"])
        defer { folder.remove() }
        #expect(try folder.load().catalog.files[0].error?.contains("unknown option 'async' (allowed: changed, name, when)") == true)
    }

    @Test func globalsOfTwoFilesDoNotCollide() throws {
        let folder = try HooksFolder([
            "a.lua": "count = 'a'\nfunction handler(e) e.data.from_a = count end\nbefore_record_create('posts', handler)",
            "b.lua": "count = 'b'\nfunction handler(e) e.data.from_b = count end\nbefore_record_create('posts', handler)",
        ])
        defer { folder.remove() }
        let hooks = try folder.load()
        let outcome = hooks.runtimes[0].runBefore(event(), handlers: hooks.catalog.matching(.before, .created, collection: "posts"))
        #expect(outcome == .proceed(["title": "Hello", "from_a": "a", "from_b": "b"]))
    }

    @Test func sharedModuleViaRequireAndClosures() throws {
        let folder = try HooksFolder([
            "_utils.lua": "local M = {}\nfunction M.slugify(s) return (s:lower():gsub('%W+', '-')) end\nreturn M",
            "posts.lua": """
                local utils = require("_utils")
                local prefix = "post-"
                before_record_create("posts", function(e) e.data.slug = prefix .. utils.slugify(e.data.title) end)
                """,
            "other.lua": "local utils = require('_utils')\nbefore_record_create('posts', function(e) e.data.same = (utils == require('_utils')) end)",
        ])
        defer { folder.remove() }
        let hooks = try folder.load()
        let outcome = hooks.runtimes[0].runBefore(event(data: ["title": "Hello World"]), handlers: hooks.catalog.matching(.before, .created, collection: "posts"))
        #expect(outcome == .proceed(["title": "Hello World", "slug": "post-hello-world", "same": true]))
    }

    @Test func requireOutsideTheHooksFolderFails() throws {
        let folder = try HooksFolder([
            "a.lua": "require('socket')",
            "b.lua": "require('_missing')",
            "c.lua": "require('../etc/passwd')",
        ])
        defer { folder.remove() }
        let files = try folder.load().catalog.files
        #expect(files[0].error?.contains("module 'socket' not found") == true)
        #expect(files[1].error?.contains("module '_missing' not found") == true)
        #expect(files[2].error?.contains("not found") == true)
    }

    @Test func registeringFromAHandlerIsAnError() throws {
        let folder = try HooksFolder(["late.lua": "on_record_create('posts', function(e) on_record_create('posts', function() end) end)"])
        defer { folder.remove() }
        let logs = LogCapture()
        let hooks = try folder.load(logs: logs)
        hooks.runtimes[0].runAfter(event(), handlers: [0])
        #expect(hooks.catalog.statsSnapshot()[0].lastError?.contains("handlers can only be registered while the file loads") == true)
    }

    @Test func missingFolderIsAClearError() throws {
        #expect(throws: HookDirectoryError.self) {
            try LoadedHooks.load(directory: HookDirectory(path: "/nonexistent/hooks"), states: 1, logger: LogCapture().logger)
        }
    }
}
