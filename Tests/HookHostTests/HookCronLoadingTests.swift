import HookHost
import MoonbaseJSON
import MoonbaseTestSupport
import Testing

/// `cron(...)` registrations (SPEC section 14): what loads, what is a load error, and a run.
@Suite struct HookCronLoadingTests {
    @Test func cronLoadErrorsNameTheFileAndLine() throws {
        let folder = try HooksFolder([
            "a.lua": "cron('nightly', '@daily', function() end)\ncron('often', '*/5 * * * *', function() end, {retries = 2, catch_up = false})",
            "b.lua": "local function again() end\n\ncron('nightly', '@hourly', again)",
            "c.lua": "cron('c', '61 * * * *', function() end)",
            "d.lua": "cron('d', '@every 5m', function() end)\ncron('d', '@every 6m', function() end)",
            "e.lua": "cron('e', '@every 0s', function() end)",
            "f.lua": "cron('f', '@daily', function() end, {retries = -1})",
            "g.lua": "cron('g', '@daily', function() end, {catch_up = 'yes'})",
            "h.lua": "cron('h', '@daily', function() end, {name = 'other'})",
            "i.lua": "cron('has space', '@daily', function() end)",
            "j.lua": "cron('j', '@daily', 'not a function')",
            "k.lua": "cron('k', {}, function() end)",
            "l.lua": "cron('l', '* * *', function() end)",
            "m.lua": "on_record_create('x', function() cron('late', '@daily', function() end) end)",
        ])
        defer { folder.remove() }
        let catalog = try folder.load().catalog
        let errors = Dictionary(uniqueKeysWithValues: catalog.files.map { ($0.file, $0.error ?? "loaded") })
        #expect(errors["hooks/a.lua"] == "loaded")
        #expect(errors["hooks/b.lua"] == "hooks/b.lua:3: cron: 'nightly' is already defined by hooks/a.lua:1")
        #expect(errors["hooks/c.lua"] == "hooks/c.lua:1: cron: schedule '61 * * * *': minute field: '61' is out of range 0-59")
        #expect(errors["hooks/d.lua"] == "hooks/d.lua:2: cron: 'd' is already defined at line 1")
        #expect(errors["hooks/e.lua"]?.hasPrefix("hooks/e.lua:1: cron: schedule '@every 0s': @every takes a whole number") == true)
        #expect(errors["hooks/f.lua"] == "hooks/f.lua:1: cron: option 'retries' must be an integer from 0 to 100")
        #expect(errors["hooks/g.lua"] == "hooks/g.lua:1: cron: option 'catch_up' must be a boolean")
        #expect(errors["hooks/h.lua"] == "hooks/h.lua:1: cron: unknown option 'name' (allowed: catch_up, retries)")
        #expect(errors["hooks/i.lua"] == "hooks/i.lua:1: cron: name 'has space' must be 1 to 100 letters, digits, - _ or .")
        #expect(errors["hooks/j.lua"] == "hooks/j.lua:1: cron: handler must be a function (got string)")
        #expect(errors["hooks/k.lua"] == "hooks/k.lua:1: cron: bad argument #2 (schedule expected, got table)")
        #expect(errors["hooks/l.lua"] == "hooks/l.lua:1: cron: schedule '* * *': expected 5 fields (minute hour day-of-month month day-of-week), got 3")
        #expect(errors["hooks/m.lua"] == "loaded")

        let crons = catalog.cronHandlers.map { catalog.handlers[$0] }
        #expect(crons.map(\.name) == ["nightly", "often"])
        #expect(crons.map { $0.cron?.catchUp } == [true, false])
        #expect(crons.map(\.retries) == [0, 2])
        #expect(crons.map(\.line) == [1, 2])
        guard case .array(let files) = catalog.listing(cronStatus: { name in ["next_run": .string("at \(name)")] }),
              case .object(let file) = files[0], case .array(let items)? = file["crons"] else {
            Issue.record("no crons listed")
            return
        }
        #expect(file["handlers"] == .array([]))
        #expect(items.count == 2)
        guard case .object(let often) = items[1] else { return }
        #expect(often["name"] == "often")
        #expect(often["schedule"] == "*/5 * * * *")
        #expect(often["retries"] == .int(2))
        #expect(often["catch_up"] == .bool(false))
        #expect(often["next_run"] == "at often")
    }

    @Test func aCronHandlerGetsItsEventAndFailuresAreReported() async throws {
        let folder = try HooksFolder([
            "jobs.lua": """
                seen = nil
                cron('ok', '@daily', function(event) seen = event.type .. ' ' .. event.name .. ' ' .. event.scheduled_at .. ' ' .. event.attempt end)
                cron('bad', '@daily', function(event) error('cleanup failed on attempt ' .. event.attempt) end)
                """,
        ])
        defer { folder.remove() }
        let pool = HookPool(try folder.load())
        defer { Task { await pool.shutdown() } }
        let event: (String, Int) -> JSONObject = { name, attempt in
            ["type": "cron", "id": "ev1", "name": .string(name), "scheduled_at": "2026-03-10T00:00:00.000Z",
             "timestamp": "2026-03-10T00:00:00.004Z", "attempt": .int(Int64(attempt))]
        }
        let ok = await pool.runCron(0, event: event("ok", 1))
        #expect(ok.error == nil)
        let bad = await pool.runCron(1, event: event("bad", 3))
        #expect(bad.error?.message.contains("hooks/jobs.lua:3: cleanup failed on attempt 3") == true, "\(bad.error?.message ?? "")")
        let stats = pool.catalog.statsSnapshot()
        #expect(stats[0].calls == 1 && stats[0].errors == 0)
        #expect(stats[1].calls == 1 && stats[1].errors == 1)
    }
}
