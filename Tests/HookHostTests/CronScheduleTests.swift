import HookHost
import MoonbaseModel
import Testing

/// The cron expressions of SPEC section 14 and the next-run computation.
@Suite struct CronScheduleTests {
    private func ms(_ timestamp: String) -> Int64 {
        Timestamp.milliseconds(timestamp)!
    }

    private func schedule(_ text: String) throws -> CronSchedule {
        try CronSchedule.parse(text).get()
    }

    /// The next `count` slots after `start`, formatted.
    private func runs(_ text: String, after start: String, count: Int = 1) -> [String] {
        guard let schedule = try? schedule(text) else {
            Issue.record("'\(text)' was refused")
            return []
        }
        var time = ms(start)
        var result: [String] = []
        for _ in 0..<count {
            guard let next = schedule.next(after: time) else { break }
            result.append(Timestamp.format(millisecondsSince1970: next))
            time = next
        }
        return result
    }

    @Test func everyFieldForm() throws {
        #expect(runs("* * * * *", after: "2026-03-10T10:15:30.500Z", count: 2) == ["2026-03-10T10:16:00.000Z", "2026-03-10T10:17:00.000Z"])
        #expect(runs("7 * * * *", after: "2026-03-10T10:15:00.000Z", count: 2) == ["2026-03-10T11:07:00.000Z", "2026-03-10T12:07:00.000Z"])
        #expect(runs("10-12 3 * * *", after: "2026-03-10T10:15:00.000Z", count: 4)
            == ["2026-03-11T03:10:00.000Z", "2026-03-11T03:11:00.000Z", "2026-03-11T03:12:00.000Z", "2026-03-12T03:10:00.000Z"])
        #expect(runs("*/20 * * * *", after: "2026-03-10T10:15:00.000Z", count: 3)
            == ["2026-03-10T10:20:00.000Z", "2026-03-10T10:40:00.000Z", "2026-03-10T11:00:00.000Z"])
        #expect(runs("10-30/10 * * * *", after: "2026-03-10T10:15:00.000Z", count: 3)
            == ["2026-03-10T10:20:00.000Z", "2026-03-10T10:30:00.000Z", "2026-03-10T11:10:00.000Z"])
        #expect(runs("50/5 8 * * *", after: "2026-03-10T10:15:00.000Z", count: 3)
            == ["2026-03-11T08:50:00.000Z", "2026-03-11T08:55:00.000Z", "2026-03-12T08:50:00.000Z"])
        #expect(runs("0 9,17 * * *", after: "2026-03-10T10:15:00.000Z", count: 3)
            == ["2026-03-10T17:00:00.000Z", "2026-03-11T09:00:00.000Z", "2026-03-11T17:00:00.000Z"])
        #expect(runs("0 0 1 1,7 *", after: "2026-03-10T10:15:00.000Z", count: 2) == ["2026-07-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z"])
        // 2026-03-10 is a Tuesday; 1-5 is Monday to Friday, 7 and 0 are both Sunday.
        #expect(runs("30 6 * * 1-5", after: "2026-03-13T10:00:00.000Z", count: 2) == ["2026-03-16T06:30:00.000Z", "2026-03-17T06:30:00.000Z"])
        #expect(runs("0 0 * * 7", after: "2026-03-10T10:00:00.000Z") == ["2026-03-15T00:00:00.000Z"])
        #expect(runs("0 0 * * 0", after: "2026-03-10T10:00:00.000Z") == ["2026-03-15T00:00:00.000Z"])
        #expect(runs("  5   4 * * *  ", after: "2026-03-10T10:00:00.000Z") == ["2026-03-11T04:05:00.000Z"])
    }

    @Test func macros() throws {
        let start = "2026-03-10T10:15:00.000Z"
        #expect(runs("@hourly", after: start) == ["2026-03-10T11:00:00.000Z"])
        #expect(runs("@daily", after: start) == ["2026-03-11T00:00:00.000Z"])
        #expect(runs("@midnight", after: start) == ["2026-03-11T00:00:00.000Z"])
        #expect(runs("@weekly", after: start) == ["2026-03-15T00:00:00.000Z"])
        #expect(runs("@monthly", after: start) == ["2026-04-01T00:00:00.000Z"])
        #expect(runs("@yearly", after: start) == ["2027-01-01T00:00:00.000Z"])
        #expect(runs("@annually", after: start) == ["2027-01-01T00:00:00.000Z"])
    }

    @Test func monthEndsLeapYearsAndYearEnd() throws {
        #expect(runs("0 12 31 * *", after: "2026-01-31T13:00:00.000Z", count: 3)
            == ["2026-03-31T12:00:00.000Z", "2026-05-31T12:00:00.000Z", "2026-07-31T12:00:00.000Z"])
        #expect(runs("0 0 30 * *", after: "2026-01-30T00:00:00.000Z", count: 2) == ["2026-03-30T00:00:00.000Z", "2026-04-30T00:00:00.000Z"])
        // February 29: only in leap years (2100 is not one, 2000 was).
        #expect(runs("0 0 29 2 *", after: "2026-03-01T00:00:00.000Z", count: 2) == ["2028-02-29T00:00:00.000Z", "2032-02-29T00:00:00.000Z"])
        #expect(runs("0 0 29 2 *", after: "2096-03-01T00:00:00.000Z") == ["2104-02-29T00:00:00.000Z"])
        #expect(runs("0 0 29 2 *", after: "1999-03-01T00:00:00.000Z") == ["2000-02-29T00:00:00.000Z"])
        #expect(runs("0 0 28-31 2 *", after: "2027-02-27T00:00:00.000Z", count: 2) == ["2027-02-28T00:00:00.000Z", "2028-02-28T00:00:00.000Z"])
        #expect(runs("0 0 28-31 2 *", after: "2028-02-28T00:00:00.000Z") == ["2028-02-29T00:00:00.000Z"])
        #expect(runs("59 23 31 12 *", after: "2026-12-31T23:58:59.999Z", count: 2) == ["2026-12-31T23:59:00.000Z", "2027-12-31T23:59:00.000Z"])
        #expect(runs("* * * * *", after: "2026-12-31T23:59:00.000Z") == ["2027-01-01T00:00:00.000Z"])
        #expect(runs("0 0 1 * *", after: "2026-12-15T00:00:00.000Z") == ["2027-01-01T00:00:00.000Z"])
    }

    @Test func dayOfMonthOrDayOfWeekWhenBothAreRestricted() throws {
        // The 13th or any Friday (2026-03-13 is a Friday): either matches.
        #expect(runs("0 0 13 * 5", after: "2026-03-01T00:00:00.000Z", count: 4)
            == ["2026-03-06T00:00:00.000Z", "2026-03-13T00:00:00.000Z", "2026-03-20T00:00:00.000Z", "2026-03-27T00:00:00.000Z"])
        #expect(runs("0 0 1 * 1", after: "2026-03-24T00:00:00.000Z", count: 2) == ["2026-03-30T00:00:00.000Z", "2026-04-01T00:00:00.000Z"])
        // A field starting with * does not count as restricted: then both must match.
        #expect(runs("0 0 */2 * 5", after: "2026-03-01T00:00:00.000Z", count: 2) == ["2026-03-13T00:00:00.000Z", "2026-03-27T00:00:00.000Z"])
        #expect(runs("0 0 13 * *", after: "2026-03-13T00:00:00.000Z") == ["2026-04-13T00:00:00.000Z"])
    }

    @Test func everyCountsSlotsFromTheEpoch() throws {
        #expect(runs("@every 30s", after: "2026-03-10T10:15:10.000Z", count: 3)
            == ["2026-03-10T10:15:30.000Z", "2026-03-10T10:16:00.000Z", "2026-03-10T10:16:30.000Z"])
        #expect(runs("@every 7m", after: "1970-01-01T00:00:00.000Z", count: 2) == ["1970-01-01T00:07:00.000Z", "1970-01-01T00:14:00.000Z"])
        #expect(runs("@every 1h", after: "2026-03-10T10:15:10.000Z") == ["2026-03-10T11:00:00.000Z"])
        #expect(runs("@every 1s", after: "2026-03-10T10:15:10.000Z") == ["2026-03-10T10:15:11.000Z"])
        // Exactly on a slot, the next one is the following slot.
        #expect(runs("@every 5m", after: "2026-03-10T10:15:00.000Z") == ["2026-03-10T10:20:00.000Z"])
        let every = try schedule("@every 90s")
        #expect(every.next(after: 1_000_000_000_123)! % 90_000 == 0)
    }

    @Test func latestMissedSlot() throws {
        let daily = try schedule("@daily")
        let now = ms("2026-03-10T10:15:00.000Z")
        #expect(daily.latest(atOrBefore: now, after: ms("2026-03-07T12:00:00.000Z")) == ms("2026-03-10T00:00:00.000Z"))
        #expect(daily.latest(atOrBefore: now, after: ms("2026-03-10T00:00:00.000Z")) == nil)
        #expect(daily.latest(atOrBefore: now, after: ms("2026-03-09T23:59:59.999Z")) == ms("2026-03-10T00:00:00.000Z"))
        let every = try schedule("@every 1m")
        #expect(every.latest(atOrBefore: now + 59_000, after: ms("2026-03-10T09:00:00.000Z")) == now)
        #expect(every.latest(atOrBefore: now + 59_000, after: now) == nil)
    }

    @Test func badSchedulesSayWhatIsWrong() {
        let cases: [(String, String)] = [
            ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
            ("* * * * * *", "got 6"),
            ("", "got 0"),
            ("60 * * * *", "minute field: '60' is out of range 0-59"),
            ("* 24 * * *", "hour field: '24' is out of range 0-23"),
            ("* * 0 * *", "day-of-month field: '0' is out of range 1-31"),
            ("* * 32 * *", "day-of-month field: '32' is out of range 1-31"),
            ("* * * 13 *", "month field: '13' is out of range 1-12"),
            ("* * * * 8", "day-of-week field: '8' is out of range 0-7"),
            ("5-1 * * * *", "minute field: range '5-1' goes backwards"),
            ("*/0 * * * *", "minute field: step '0' in '*/0' must be a whole number from 1"),
            ("*/x * * * *", "step 'x'"),
            ("a * * * *", "minute field: 'a' is not a number, *, a range a-b or a step"),
            ("1,,2 * * * *", "minute field: '' is not a number"),
            ("-1 * * * *", "is not a number"),
            ("1/2/3 * * * *", "has more than one /"),
            ("0 0 30 2 *", "no date matches it, so it would never run"),
            ("0 0 31 4,6,9,11 *", "never run"),
            ("@often", "unknown macro @often"),
            ("@every", "@every takes a whole number of seconds, minutes or hours"),
            ("@every 0s", "@every takes"),
            ("@every 500ms", "@every takes"),
            ("@every 1.5h", "@every takes"),
            ("@every 10d", "@every takes"),
            ("@every -5s", "@every takes"),
        ]
        for (text, problem) in cases {
            switch CronSchedule.parse(text) {
            case .success: Issue.record("'\(text)' was accepted")
            case .failure(let error):
                #expect(error.message.hasPrefix("schedule '\(text)': "), "\(error.message)")
                #expect(error.message.contains(problem), "\(text): \(error.message)")
            }
        }
    }
}
