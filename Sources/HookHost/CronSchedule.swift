import MoonbaseModel

/// When a `cron(name, schedule, handler)` hook runs (SPEC section 14): five fields in UTC
/// (`minute hour day-of-month month day-of-week`, each a number, `*`, a range `a-b`, a step
/// `*/n`, `a-b/n` or `a/n`, or a comma list of these), a macro (`@hourly`, `@daily`,
/// `@midnight`, `@weekly`, `@monthly`, `@yearly`, `@annually`) or `@every N` with `s`, `m`
/// or `h` (at least 1 s).
///
/// Pure: it knows times only as milliseconds since 1970. A slot is a point in time the schedule
/// names; `@every` slots are multiples of the interval counted from the Unix epoch, so every
/// node computes the same ones.
public struct CronSchedule: Sendable, Equatable {
    /// The schedule as written.
    public let text: String
    let kind: Kind

    enum Kind: Equatable {
        case fields(Fields)
        /// Milliseconds between slots.
        case every(Int64)
    }

    /// The five fields as sets of allowed values (bit `n` set: value `n` allowed).
    struct Fields: Equatable {
        var minutes: UInt64
        var hours: UInt64
        var days: UInt64
        var months: UInt64
        /// 0 = Sunday … 6 = Saturday (7 is read as Sunday).
        var weekdays: UInt64
        /// Whether day-of-month and day-of-week were written starting with `*`: when neither
        /// was, a day matches if either matches (as in every cron since Vixie's).
        var anyDay: Bool
        var anyWeekday: Bool
    }

    private static let macros: [String: String] = [
        "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
        "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
    ]

    /// Reads a schedule; the error says which part is wrong and why.
    public static func parse(_ text: String) -> Result<CronSchedule, CronScheduleError> {
        let trimmed = text.trimmingSpaces
        func failure(_ problem: String) -> Result<CronSchedule, CronScheduleError> {
            .failure(CronScheduleError(message: "schedule '\(text)': \(problem)"))
        }
        if trimmed.hasPrefix("@every") {
            let amount = trimmed.dropFirst("@every".count).trimmingSpaces
            guard let unit = amount.last, let factor = ["s": Int64(1000), "m": 60_000, "h": 3_600_000][String(unit)],
                  let count = Int64(amount.dropLast()), count >= 1, count <= 1_000_000_000 else {
                return failure("@every takes a whole number of seconds, minutes or hours, such as @every 30s, @every 5m, @every 1h")
            }
            return .success(CronSchedule(text: text, kind: .every(count * factor)))
        }
        var expression = trimmed
        if expression.hasPrefix("@") {
            guard let expanded = macros[expression] else {
                return failure("unknown macro \(expression) (use @hourly, @daily, @weekly, @monthly, @yearly or @every N s|m|h)")
            }
            expression = expanded
        }
        let parts = expression.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard parts.count == 5 else {
            return failure("expected 5 fields (minute hour day-of-month month day-of-week), got \(parts.count)")
        }
        var sets: [UInt64] = []
        for (part, field) in zip(parts, Field.all) {
            switch field.parse(part) {
            case .success(let set): sets.append(set)
            case .failure(let error): return failure(error.message)
            }
        }
        var weekdays = sets[4]
        if weekdays & (1 << 7) != 0 { weekdays = (weekdays | 1) & ~(1 << 7) }
        let fields = Fields(minutes: sets[0], hours: sets[1], days: sets[2], months: sets[3], weekdays: weekdays,
                            anyDay: parts[2].hasPrefix("*"), anyWeekday: parts[4].hasPrefix("*"))
        let schedule = CronSchedule(text: text, kind: .fields(fields))
        guard schedule.next(after: 0) != nil else { return failure("no date matches it, so it would never run") }
        return .success(schedule)
    }

    /// The first slot strictly after `after` (milliseconds since 1970); nil if there is none
    /// within 50 years (`parse` refuses such schedules).
    public func next(after: Int64) -> Int64? {
        switch kind {
        case .every(let interval):
            return (Self.floorDivide(after, interval) + 1) * interval
        case .fields(let fields):
            return fields.next(after: after)
        }
    }

    /// The last slot at or before `time`, but after `after`; nil when there is none in between.
    /// (A missed slot to catch up on is the latest one since the last known run.)
    public func latest(atOrBefore time: Int64, after: Int64) -> Int64? {
        guard var slot = next(after: after), slot <= time else { return nil }
        if case .every(let interval) = kind { return Self.floorDivide(time, interval) * interval }
        while let later = next(after: slot), later <= time { slot = later }
        return slot
    }

    static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return a % b < 0 ? q - 1 : q
    }
}

extension CronSchedule.Fields {
    func next(after: Int64) -> Int64? {
        var minute = CronSchedule.floorDivide(after, 60_000) + 1 // minutes since 1970
        // The rarest date that can match, February 29, comes at least every 8 years.
        let lastYear = Timestamp.civilDate(daysSince1970: CronSchedule.floorDivide(minute, 1440)).year + 50
        while true {
            let day = CronSchedule.floorDivide(minute, 1440)
            let (year, month, dayOfMonth) = Timestamp.civilDate(daysSince1970: day)
            if year > lastYear { return nil }
            if months & (1 << month) == 0 {
                let (nextYear, nextMonth) = month == 12 ? (year + 1, Int64(1)) : (year, month + 1)
                minute = Timestamp.daysSince1970(year: nextYear, month: nextMonth, day: 1) * 1440
                continue
            }
            if !matches(dayOfMonth: dayOfMonth, weekday: (day % 7 + 11) % 7) { // 1970-01-01 was a Thursday (4)
                minute = (day + 1) * 1440
                continue
            }
            let minuteOfDay = minute - day * 1440
            if hours & (1 << (minuteOfDay / 60)) == 0 {
                minute = day * 1440 + (minuteOfDay / 60 + 1) * 60
                continue
            }
            if minutes & (1 << (minuteOfDay % 60)) == 0 {
                minute += 1
                continue
            }
            return minute * 60_000
        }
    }

    private func matches(dayOfMonth: Int64, weekday: Int64) -> Bool {
        let dayMatches = days & (1 << dayOfMonth) != 0, weekdayMatches = weekdays & (1 << weekday) != 0
        // A field written with * allows all its values (or those of its step): then both must match.
        return anyDay || anyWeekday ? dayMatches && weekdayMatches : dayMatches || weekdayMatches
    }
}

/// One of the five fields: its name and range.
private struct Field {
    var name: String
    var range: ClosedRange<Int>

    static let all = [
        Field(name: "minute", range: 0...59), Field(name: "hour", range: 0...23), Field(name: "day-of-month", range: 1...31),
        Field(name: "month", range: 1...12), Field(name: "day-of-week", range: 0...7),
    ]

    /// The set of values a field allows.
    func parse(_ text: String) -> Result<UInt64, CronScheduleError> {
        var set: UInt64 = 0
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = item.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { return failure("'\(item)' has more than one /") }
            var step = 1
            if pieces.count == 2 {
                guard let given = Int(pieces[1]), given >= 1 else { return failure("step '\(pieces[1])' in '\(item)' must be a whole number from 1") }
                step = given
            }
            let base = pieces[0]
            var low = range.lowerBound, high = range.upperBound
            if base != "*" {
                let bounds = base.split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2, let first = bounds.first.flatMap({ Int($0) }), first >= 0 else {
                    return failure("'\(item)' is not a number, *, a range a-b or a step")
                }
                low = first
                if bounds.count == 2 {
                    guard let last = Int(bounds[1]), last >= 0 else { return failure("'\(item)' is not a number, *, a range a-b or a step") }
                    high = last
                } else if pieces.count == 1 {
                    high = first
                }
                guard range.contains(low), range.contains(high) else {
                    return failure("'\(item)' is out of range \(range.lowerBound)-\(range.upperBound)")
                }
                guard low <= high else { return failure("range '\(base)' goes backwards") }
            }
            for value in stride(from: low, through: high, by: step) { set |= 1 << UInt64(value) }
        }
        return .success(set)
    }

    private func failure(_ problem: String) -> Result<UInt64, CronScheduleError> {
        .failure(CronScheduleError(message: "\(name) field: \(problem)"))
    }
}

/// Why a schedule cannot be read.
public struct CronScheduleError: Error, Equatable {
    public var message: String
}

extension StringProtocol {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
