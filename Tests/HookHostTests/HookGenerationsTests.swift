import Foundation
import HookHost
import MoonbaseJSON
import MoonbaseTestSupport
import Testing

/// Generations of hooks (SPEC section 13), without a server: leases, swaps, refusals.
@Suite struct HookGenerationsTests {
    static func generations(_ folder: HooksFolder, logs: LogCapture = LogCapture()) throws -> HookGenerations {
        try HookGenerations(HookLoading(directory: HookDirectory(path: folder.path), states: 1, limits: .default, modules: [], logger: logs.logger))
    }

    static func write(_ source: String, _ name: String, in folder: HooksFolder) throws {
        try source.write(toFile: folder.path + "/" + name, atomically: true, encoding: .utf8)
    }

    @Test func aLeasedGenerationServesUntilReleasedThenIsFreed() async throws {
        let folder = try HooksFolder(["a.lua": "on_any_event(function() end, {name = 'one'})"])
        defer { folder.remove() }
        let hooks = try Self.generations(folder)
        weak let first = hooks.current
        var leased: HookGeneration? = hooks.acquire()
        try Self.write("on_any_event(function() end, {name = 'two'})", "a.lua", in: folder)
        guard case .success(let second) = await hooks.reload(by: .api) else { Issue.record("refused"); return }
        #expect(second.number == 2 && hooks.current === second && hooks.catalog.handlers.map(\.name) == ["two"])
        #expect(leased?.catalog.handlers.map(\.name) == ["one"] && hooks.live.map(\.number) == [2, 1])
        try await Task.sleep(for: .milliseconds(50))
        #expect(first != nil, "a leased generation stays")
        leased?.release()
        leased = nil
        var freed = false
        for _ in 0..<500 where !freed {
            freed = first == nil && hooks.live.map(\.number) == [2]
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(freed, "freed once its last lease is returned")
    }

    @Test func aLoadedFileThatNowFailsRefusesTheWholeReload() async throws {
        let logs = LogCapture()
        let folder = try HooksFolder(["a.lua": "on_any_event(function() end)", "b.lua": "on_any_event(function() end)"])
        defer { folder.remove() }
        let hooks = try Self.generations(folder, logs: logs)
        try Self.write("on_any_event(function() end, {name = 'changed'})", "a.lua", in: folder)
        try Self.write("error('now broken')", "b.lua", in: folder)
        guard case .failure(let refusal) = await hooks.reload(by: .watch) else { Issue.record("not refused"); return }
        #expect(refusal.file == "hooks/b.lua" && refusal.message.contains("hooks/b.lua:1: now broken") && refusal.by == .watch)
        #expect(hooks.current.number == 1 && hooks.catalog.handlers.count == 2 && hooks.catalog.handlers[0].name != "changed")
        guard case .array(let listed) = hooks.listing() else { Issue.record("no listing"); return }
        let entries = listed.compactMap { if case .object(let entry) = $0 { entry } else { nil } }
        #expect(entries.map { $0["generation"] } == [1, 1])
        guard case .object(let lastReload)? = entries[1]["last_reload"] else { Issue.record("no last_reload"); return }
        #expect(entries[0]["last_reload"] == nil && lastReload["by"] == "watch" && lastReload["refused"] == true)
        #expect(logs.lines("hooks reloaded").isEmpty && logs.lines("hook reload refused: the current hooks keep serving").count == 1)

        // The folder gone: refused too, with the reason.
        folder.remove()
        guard case .failure(let gone) = await hooks.reload(by: .signal) else { Issue.record("not refused"); return }
        #expect(gone.file == nil && gone.message.contains("does not exist") && hooks.current.number == 1)
    }
}
