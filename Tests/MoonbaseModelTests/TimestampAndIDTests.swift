import Foundation
import Testing
import MoonbaseModel

@Suite("Timestamps and ids")
struct TimestampAndIDTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (1_795_304_301_123, "2026-11-21T23:38:21.123Z"),
        (1_709_210_096_789, "2024-02-29T12:34:56.789Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ])
    func formatsKnownInstants(milliseconds: Int64, expected: String) {
        #expect(Timestamp.format(millisecondsSince1970: milliseconds) == expected)
    }

    @Test func nowIsCurrentAndWellFormed() {
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let now = Timestamp.now()
        let after = Int64(Date().timeIntervalSince1970 * 1000)
        #expect(now.count == 24)
        #expect(Timestamp.format(millisecondsSince1970: before) <= now)
        #expect(now <= Timestamp.format(millisecondsSince1970: after + 1))
        let characters = Array(now)
        for (i, separator) in [(4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (23, "Z")] as [(Int, Character)] {
            #expect(characters[i] == separator)
        }
    }

    @Test func idsAreFifteenLowercaseAlphanumerics() {
        var seen = Set<String>()
        for _ in 0..<10_000 {
            let id = RecordID.make()
            #expect(id.utf8.count == 15)
            #expect(id.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) })
            seen.insert(id)
        }
        #expect(seen.count == 10_000)
        // Every character of the alphabet shows up: the mapping is not stuck on a subset.
        let used = Set(seen.joined())
        #expect(used.count == 36)
    }

    @Test(arguments: [0, 951_782_400_000, 1_764_800_000_123, -1, 253_402_300_799_999] as [Int64])
    func timestampsParseBackToTheirMilliseconds(_ ms: Int64) {
        #expect(Timestamp.milliseconds(Timestamp.format(millisecondsSince1970: ms)) == ms)
    }

    @Test(arguments: ["2026-13-01T00:00:00.000Z", "2026-02-30T00:00:00.000Z", "2026-12-03T12:00:00.000", "2026-12-03T12:00:00Z",
                      "2026-12-03 12:00:00.000Z", "２026-12-03T12:00:00.000Z", ""])
    func textThatOnlyLooksLikeATimestampIsNot(_ text: String) {
        #expect(Timestamp.milliseconds(text) == nil)
    }

    @Test func eventIDsSplitIntoPrefixAndCounter() throws {
        let id = EventID.make()
        let parts = try #require(EventID.parts(id))
        #expect(EventID.format(prefix: parts.prefix, counter: parts.counter) == id)
        #expect(EventID.parts("evt_abcdefgh0000000z")! == ("abcdefgh", 35))
        for other in ["evt_ABCDEFGH0000000z", "evt_abcdefgh000000z", "msg_abcdefgh0000000z", "evt_abcdefgh00000001x-", "client-given"] {
            #expect(EventID.parts(other) == nil, "\(other)")
        }
    }
}
