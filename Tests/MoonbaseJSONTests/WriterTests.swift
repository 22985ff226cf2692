import Testing
@testable import MoonbaseJSON

func written(_ body: (inout [UInt8]) -> Void) -> String {
    var buffer: [UInt8] = []
    body(&buffer)
    return String(decoding: buffer, as: UTF8.self)
}

@Suite("Writing JSON")
struct WriterTests {
    @Test func compactOutput() {
        let value: JSONValue = .object([
            "a": .array([.int(1), .double(2.5), .string("x"), .null, .bool(true), .bool(false), .object([:]), .array([])]),
            "b": .object(["c": .int(-3)]),
        ])
        #expect(value.serializedString() == #"{"a":[1,2.5,"x",null,true,false,{},[]],"b":{"c":-3}}"#)
        #expect(value.serialized() == Array(value.serializedString().utf8))
    }

    @Test func scalarsAtTopLevel() {
        #expect(JSONValue.null.serializedString() == "null")
        #expect(JSONValue.bool(true).serializedString() == "true")
        #expect(JSONValue.bool(false).serializedString() == "false")
        #expect(JSONValue.int(42).serializedString() == "42")
        #expect(JSONValue.string("").serializedString() == #""""#)
        #expect(JSONValue.array([]).serializedString() == "[]")
    }

    @Test func writeAppends() {
        var buffer = Array("[".utf8)
        JSONValue.int(1).write(into: &buffer)
        buffer.append(UInt8(ascii: ","))
        JSONValue.string("two").write(into: &buffer)
        buffer.append(UInt8(ascii: "]"))
        #expect(String(decoding: buffer, as: UTF8.self) == #"[1,"two"]"#)
    }

    @Test func stringEscapes() {
        let s = "a\"b\\c\nd\re\tf\u{08}g\u{0C}h\u{01}i\u{1F}j\u{00}k/l\u{7F}m"
        #expect(written { JSONWriter.writeString(s, into: &$0) }
            == #""a\"b\\c\nd\re\tf\bg\fh\u0001i\u001fj\u0000k/l"# + "\u{7F}" + #"m""#)
    }

    @Test func unicodeIsWrittenAsIs() {
        let s = "caf\u{E9} \u{1F600} \u{4E2D}\u{6587} e\u{301} \u{2028}"
        #expect(written { JSONWriter.writeString(s, into: &$0) } == "\"" + s + "\"")
    }

    @Test func escapesAtEveryPosition() throws {
        // Cross the writer's 8-byte scanning boundaries with escapes at every offset.
        for length in 0..<40 {
            for position in 0..<max(length, 1) {
                var chars = Array(repeating: Character("a"), count: length)
                if length > 0 { chars[position] = "\n" }
                let s = String(chars)
                let out = written { JSONWriter.writeString(s, into: &$0) }
                let expected = "\"" + s.replacingNewlines() + "\""
                #expect(out == expected)
                #expect(try JSONValue.parse(out) == .string(s))
            }
        }
    }

    @Test func longStringsWithManyEscapes() throws {
        // Escapes can grow the output 6×; the writer's buffer must grow with it.
        let s = String(repeating: "\u{01}\"\\", count: 5_000)
        let out = JSONValue.string(s).serialized()
        #expect(out.count == 2 + 5_000 * (6 + 2 + 2))
        #expect(try JSONValue.parse(out) == .string(s))
    }

    @Test func ints() {
        for (i, text) in [(Int64(0), "0"), (7, "7"), (-7, "-7"), (10, "10"), (-10, "-10"), (1234567890, "1234567890"),
                          (.max, "9223372036854775807"), (.min, "-9223372036854775808"),
                          (1_000_000_000_000_000_000, "1000000000000000000"), (999_999_999_999_999_999, "999999999999999999")] {
            #expect(written { JSONWriter.writeInt(i, into: &$0) } == text)
        }
        var rng = SplitMix64(seed: 3)
        for _ in 0..<1000 {
            let i = Int64(bitPattern: rng.next()) >> (rng.next() % 64)
            #expect(written { JSONWriter.writeInt(i, into: &$0) } == String(i))
        }
    }

    @Test func digitsAreAppendedInOrder() {
        for value: Int64 in [0, 7, 9, 10, 63, 100, 1_000_001, .max] {
            var buffer = Array("x".utf8)
            JSONWriter.writeInt(value, into: &buffer)
            #expect(String(decoding: buffer, as: UTF8.self) == "x" + value.description)
        }
    }

    @Test func doubles() {
        let cases: [(Double, String)] = [
            (1.0, "1.0"), (100.0, "100.0"), (-2.0, "-2.0"), (0.0, "0.0"), (-0.0, "-0.0"),
            (0.1, "0.1"), (2.5, "2.5"), (0.30000000000000004, "0.30000000000000004"),
            (1e16, "1e+16"), (1e-5, "1e-05"), (.leastNonzeroMagnitude, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
            (9007199254740992.0, "9007199254740992.0"), (123456.789, "123456.789"),
            (.nan, "null"), (.infinity, "null"), (-.infinity, "null"),
        ]
        for (d, text) in cases {
            #expect(written { JSONWriter.writeDouble(d, into: &$0) } == text, "\(d)")
        }
    }

    @Test func integralDoublesParseBackAsDoubles() throws {
        for d in [1.0, -1.0, 0.0, 100.0, 1e15, 1e16, 1e17, 9.2233720368547758e18, 1e300, -4503599627370496.0] {
            let value = try JSONValue.parse(JSONValue.double(d).serialized())
            #expect(value == .double(d), "\(d)")
        }
    }

    @Test func nonFiniteInsideStructures() {
        let value: JSONValue = .array([.double(.nan), .object(["x": .double(.infinity)])])
        #expect(value.serializedString() == #"[null,{"x":null}]"#)
    }

    @Test func largeOutputSpillsBeyondTheStackBuffer() throws {
        let value = JSONValue.array((0..<20_000).map { JSONValue.string("item \($0)") })
        let out = value.serialized()
        #expect(out.count > 100_000)
        #expect(try JSONValue.parse(out) == value)
        var buffer = Array("x".utf8)
        value.write(into: &buffer)
        #expect(buffer.count == out.count + 1)
        #expect(Array(buffer.dropFirst()) == out)
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        var out = ""
        for c in self { out += c == "\n" ? "\\n" : String(c) }
        return out
    }
}
