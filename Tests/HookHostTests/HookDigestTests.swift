import Foundation
import HookHost
import MoonbaseTestSupport
import Testing

/// The hooks folder's digest, which nodes compare: it follows what a load reads, nothing else.
@Suite struct HookDigestTests {
    static let handler = "on_any_event(function() end, {name = 'one'})"

    static func digest(_ folder: HooksFolder) throws -> String {
        let directory = HookDirectory(path: folder.path)
        return directory.digest(of: try directory.discover())
    }

    @Test func theDigestChangesWithAFileAndNotWithoutOne() async throws {
        let folder = try HooksFolder(["a.lua": Self.handler, "_util.lua": "return {}", "notes.txt": "x"])
        defer { folder.remove() }
        let first = try Self.digest(folder)
        #expect(first.count == 64 && first.allSatisfy { "0123456789abcdef".contains($0) })
        #expect(try Self.digest(folder) == first, "nothing changed")
        // Rewriting a file with the same bytes (a new modification time) changes nothing.
        try Self.handler.write(toFile: folder.path + "/a.lua", atomically: true, encoding: .utf8)
        #expect(try Self.digest(folder) == first)
        try "not a hook file".write(toFile: folder.path + "/README.md", atomically: true, encoding: .utf8)
        try "swap".write(toFile: folder.path + "/.a.lua.swp", atomically: true, encoding: .utf8)
        #expect(try Self.digest(folder) == first, "files a load does not read do not count")

        try (Self.handler + " ").write(toFile: folder.path + "/a.lua", atomically: true, encoding: .utf8)
        let edited = try Self.digest(folder)
        #expect(edited != first, "one byte more")
        try "return {x = 1}".write(toFile: folder.path + "/_util.lua", atomically: true, encoding: .utf8)
        let module = try Self.digest(folder)
        #expect(module != edited, "a module hooks require is part of what loads")
        try FileManager.default.moveItem(atPath: folder.path + "/a.lua", toPath: folder.path + "/b.lua")
        #expect(try Self.digest(folder) != module, "a renamed file")
        try "".write(toFile: folder.path + "/c.lua", atomically: true, encoding: .utf8)
        let withEmpty = try Self.digest(folder)
        try FileManager.default.removeItem(atPath: folder.path + "/c.lua")
        #expect(withEmpty != (try Self.digest(folder)), "an empty file added counts")
    }

    @Test func foldersWithTheSameFilesHaveTheSameDigestWhereverTheyAre() async throws {
        let one = try HooksFolder(["a.lua": Self.handler, "b.lua": "-- b"])
        let two = try HooksFolder(["b.lua": "-- b", "a.lua": Self.handler])
        let other = try HooksFolder(["a.lua": "-- b", "b.lua": Self.handler])
        defer { [one, two, other].forEach { $0.remove() } }
        #expect(try Self.digest(one) == (try Self.digest(two)))
        #expect(try Self.digest(one) != (try Self.digest(other)), "the same contents under other names")
        let missing = HookDirectory(path: one.path + "/nowhere")
        let empty = try HooksFolder([:])
        defer { empty.remove() }
        #expect(missing.digest(of: []) == (try Self.digest(empty)), "no folder serves no hooks, as an empty one")
    }

    @Test func eachGenerationCarriesTheDigestItWasLoadedFrom() async throws {
        let folder = try HooksFolder(["a.lua": Self.handler])
        defer { folder.remove() }
        let hooks = try HookGenerationsTests.generations(folder)
        let first = hooks.current.hooksDigest
        #expect(first == (try Self.digest(folder)))
        guard case .success(let same) = await hooks.reload(by: .api) else { Issue.record("refused"); return }
        #expect(same.hooksDigest == first, "a reload of the same files")
        try HookGenerationsTests.write("on_any_event(function() end, {name = 'two'})", "a.lua", in: folder)
        guard case .success(let changed) = await hooks.reload(by: .api) else { Issue.record("refused"); return }
        #expect(changed.hooksDigest != first && hooks.current.hooksDigest == changed.hooksDigest)
        #expect(changed.hooksDigest == (try Self.digest(folder)))
    }
}
