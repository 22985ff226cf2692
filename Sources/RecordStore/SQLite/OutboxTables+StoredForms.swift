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
