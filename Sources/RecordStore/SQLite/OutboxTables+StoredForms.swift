import MoonbaseModel

// How an event row keeps its values in few bytes (see `Schema`, v5): integers for what the server
// makes itself (timestamps, event ids, the event type), the text verbatim for anything else, so
// every value reads back exactly as it was given.

extension OutboxTables {
    // MARK: - Event types

    /// The stored code of each event type: its position here.
    static let eventTypes: [RecordEventType] = [.created, .updated, .deleted]

    static func typeCode(_ type: RecordEventType) -> Int64 {
        Int64(eventTypes.firstIndex(of: type)!)
    }

    static func eventType(code: Int64) throws -> RecordEventType {
        guard code >= 0, code < eventTypes.count else { throw CorruptOutbox(problem: "unknown event type \(code)") }
        return eventTypes[Int(code)]
    }

    // MARK: - Timestamps

    /// Milliseconds since 1970 of a timestamp exactly as `Timestamp.format` writes it, else nil
    /// (such a value is kept as text).
    static func milliseconds(_ timestamp: String) -> Int64? {
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
            // Howard Hinnant's `days_from_civil`, the inverse of `Timestamp`'s.
            let y = month <= 2 ? year - 1 : year
            let era = (y >= 0 ? y : y - 399) / 400
            let yearOfEra = y - era * 400
            let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
            let days = era * 146_097 + yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear - 719_468
            let ms = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis
            // Formatting it back rejects what only looks like a timestamp (a 13th month, no "Z").
            return Timestamp.format(millisecondsSince1970: ms) == timestamp ? ms : nil
        }
    }

    // MARK: - Event ids

    /// The prefix and counter of an id exactly as `EventID.make` writes it (`evt_` + 8 characters
    /// + the base-36 counter, at least 8 digits), else nil (such an id is kept as text).
    static func eventIDParts(_ id: String) -> (prefix: String, counter: Int64)? {
        guard id.utf8.count >= 20, id.hasPrefix("evt_") else { return nil }
        let prefix = String(id.dropFirst(4).prefix(8))
        guard prefix.utf8.allSatisfy(isBase36Digit), let counter = Int64(id.dropFirst(12), radix: 36),
              EventID.format(prefix: prefix, counter: counter) == id else { return nil }
        return (prefix, counter)
    }

    private static func isBase36Digit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
    }
}

/// The timings of the first attempts that succeeded while their delivery lived in its event's row:
/// one entry per such delivery, by target, each its start (milliseconds) and duration
/// (microseconds).
///
/// Stored as varints, each start as the difference from the one before (the first: from the
/// event's `created`), so a job's deliveries, which share a start, cost about two bytes each.
/// Which targets have an entry is known from the row's bits, so the entries do not say.
struct SuccessTimings: Equatable {
    struct Entry: Equatable {
        /// Milliseconds since 1970.
        var started: Int64
        var microseconds: Int64
    }

    var entries: [Entry]

    init(_ entries: [Entry] = []) {
        self.entries = entries
    }

    /// A duration to the microsecond; not finite or negative: 0.
    static func microseconds(_ milliseconds: Double) -> Int64 {
        milliseconds.isFinite && milliseconds > 0 ? Int64(min(milliseconds * 1000, 9e15).rounded()) : 0
    }

    /// Reads the entries `encoded(created:)` wrote; nil if the bytes do not hold whole entries.
    init?(_ bytes: [UInt8], created: Int64) {
        var reader = VarintReader(bytes: bytes)
        var started = created
        entries = []
        while !reader.atEnd {
            guard let delta = reader.next(), let microseconds = reader.next() else { return nil }
            started &+= Int64(bitPattern: delta >> 1) ^ -Int64(bitPattern: delta & 1) // zigzag
            entries.append(Entry(started: started, microseconds: Int64(bitPattern: microseconds)))
        }
    }

    func encoded(created: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.count * 3)
        var previous = created
        for entry in entries {
            let delta = entry.started &- previous
            Self.write(UInt64(bitPattern: (delta << 1) ^ (delta >> 63)), into: &bytes) // zigzag: small either way
            Self.write(UInt64(bitPattern: max(entry.microseconds, 0)), into: &bytes)
            previous = entry.started
        }
        return bytes
    }

    private static func write(_ value: UInt64, into bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    private struct VarintReader {
        let bytes: [UInt8]
        var index = 0

        var atEnd: Bool { index == bytes.count }

        mutating func next() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while index < bytes.count, shift < 64 {
                let byte = bytes[index]
                index += 1
                value |= UInt64(byte & 0x7f) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            return nil
        }
    }
}
