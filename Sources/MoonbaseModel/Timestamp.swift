#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// ISO-8601 timestamps in UTC with milliseconds, e.g. `2026-11-21T23:38:21.123Z`.
///
/// Every record write stamps one, so this formats digits by hand instead of going through a
/// `DateFormatter` (which costs microseconds per call). Fixed width, so the strings also sort
/// chronologically as text, which the `created`/`updated` indexes rely on.
public enum Timestamp {
    /// The current time, formatted.
    public static func now() -> String {
        format(millisecondsSince1970: currentMilliseconds())
    }

    /// Milliseconds since 1970-01-01T00:00:00Z from the real-time clock.
    public static func currentMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// Formats a point in time (years 0000–9999) as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    public static func format(millisecondsSince1970 ms: Int64) -> String {
        let (seconds, millis) = floorDivide(ms, 1000)
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let (year, month, day) = civilDate(daysSince1970: days)
        let hour = secondOfDay / 3600, minute = secondOfDay % 3600 / 60, second = secondOfDay % 60

        return String(unsafeUninitializedCapacity: 24) { out in
            func put(_ value: Int64, _ digits: Int, at start: Int) {
                var v = value
                for i in stride(from: start + digits - 1, through: start, by: -1) {
                    out[i] = UInt8(truncatingIfNeeded: 0x30 + v % 10)
                    v /= 10
                }
            }
            put(year, 4, at: 0); out[4] = UInt8(ascii: "-")
            put(month, 2, at: 5); out[7] = UInt8(ascii: "-")
            put(day, 2, at: 8); out[10] = UInt8(ascii: "T")
            put(hour, 2, at: 11); out[13] = UInt8(ascii: ":")
            put(minute, 2, at: 14); out[16] = UInt8(ascii: ":")
            put(second, 2, at: 17); out[19] = UInt8(ascii: ".")
            put(millis, 3, at: 20); out[23] = UInt8(ascii: "Z")
            return 24
        }
    }

    /// Milliseconds since 1970 of a timestamp exactly as `format` writes it, else nil (a 13th
    /// month, a missing `Z`, another width: whatever `format` would not have written).
    public static func milliseconds(_ timestamp: String) -> Int64? {
        var text = timestamp
        return text.withUTF8 { bytes -> Int64? in
            guard bytes.count == 24 else { return nil }
            func number(_ start: Int, _ count: Int) -> Int64? {
                var value: Int64 = 0
                for byte in bytes[start..<start + count] {
                    guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                    value = value * 10 + Int64(byte - UInt8(ascii: "0"))
                }
                return value
            }
            guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
                  let minute = number(14, 2), let second = number(17, 2), let millis = number(20, 3) else { return nil }
            let days = daysSince1970(year: year, month: month, day: day)
            let ms = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis
            // Formatting it back rejects what only looks like a timestamp.
            return format(millisecondsSince1970: ms) == timestamp ? ms : nil
        }
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> (quotient: Int64, remainder: Int64) {
        let q = a / b, r = a % b
        return r < 0 ? (q - 1, r + b) : (q, r)
    }

    /// A proleptic Gregorian date to days since the epoch (Howard Hinnant's `days_from_civil`,
    /// the inverse of `civilDate`); `day` may run past the month's end.
    public static func daysSince1970(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        return era * 146_097 + yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear - 719_468
    }

    /// Days since the epoch to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
    public static func civilDate(daysSince1970: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = daysSince1970 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension Duration {
    /// Whole milliseconds (rounded down), the unit the store and the delivery clock count in.
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
