import Testing
@testable import MoonbaseJSON

/// Parses text that must be valid.
func parsed(_ text: String, maxDepth: Int = 512) throws -> JSONValue {
    try JSONValue.parse(text, maxDepth: maxDepth)
}

/// The object inside a value that must be one.
func object(_ value: JSONValue) throws -> JSONObject {
    guard case .object(let object) = value else {
        Issue.record("expected an object, got \(value)")
        throw ExpectedObject()
    }
    return object
}

struct ExpectedObject: Error {}

@Suite("Parsing valid JSON")
struct ParseTests {
    @Test func scalars() throws {
        #expect(try parsed("null") == .null)
        #expect(try parsed("true") == .bool(true))
        #expect(try parsed("false") == .bool(false))
        #expect(try parsed("0") == .int(0))
        #expect(try parsed("\"\"") == .string(""))
        #expect(try parsed("\"hi\"") == .string("hi"))
    }

    @Test func integersAndDoublesStayApart() throws {
        #expect(try parsed("1") == .int(1))
        #expect(try parsed("1.0") == .double(1.0))
        #expect(try parsed("1e2") == .double(100))
        #expect(try parsed("1E2") == .double(100))
        #expect(try parsed("1e+2") == .double(100))
        #expect(try parsed("100e-2") == .double(1))
        #expect(try parsed("-7") == .int(-7))
        #expect(try parsed("-7.25") == .double(-7.25))
        // Same numeric value, different cases: ints and doubles are not equal.
        #expect(try parsed("1") != parsed("1.0"))
    }

    @Test func int64Limits() throws {
        #expect(try parsed("9223372036854775807") == .int(.max))
        #expect(try parsed("-9223372036854775808") == .int(.min))
        // One past either end no longer fits: it becomes a double.
        #expect(try parsed("9223372036854775808") == .double(9_223_372_036_854_775_808.0))
        #expect(try parsed("-9223372036854775809") == .double(-9_223_372_036_854_775_809.0))
        #expect(try parsed("18446744073709551616") == .double(18_446_744_073_709_551_616.0))
        #expect(try parsed("123456789012345678901234567890") == .double(1.2345678901234568e29))
    }

    @Test func negativeZero() throws {
        // An integer literal: Int64 has no negative zero.
        #expect(try parsed("-0") == .int(0))
        let value = try parsed("-0.0")
        guard case .double(let d) = value else {
            Issue.record("expected a double, got \(value)")
            return
        }
        #expect(d == 0 && d.sign == .minus)
        guard case .double(let e) = try parsed("-0e10") else {
            Issue.record("expected a double")
            return
        }
        #expect(e == 0 && e.sign == .minus)
    }

    @Test(arguments: [
        "0.1", "0.2", "0.30000000000000004", "3.141592653589793", "2.718281828459045",
        "1e-7", "2.5e-3", "123.456e2", "5e-324", "2.2250738585072014e-308", "1.7976931348623157e308",
        "4.9406564584124654e-324", "9007199254740993.0", "0.000001", "1e22", "1e23",
        "123456789.123456789", "3.141592653589793238462643383279502884197", "-1.5e300",
        "0.0000000000000000000000000000001", "1234567890123456789012.5",
        "7.0e-10", "1.00000000000000011102230246251565404236316680908203125",
    ])
    func doublesAreCorrectlyRounded(_ text: String) throws {
        let value = try parsed(text)
        let expected = try #require(Double(text))
        #expect(value == .double(expected))
        if case .double(let d) = value {
            #expect(d.bitPattern == expected.bitPattern, "\(text) parsed as \(d), expected \(expected)")
        }
    }

    @Test func underflowIsZero() throws {
        #expect(try parsed("1e-400") == .double(0))
    }

    @Test func randomDecimalsMatchTheStandardLibrary() throws {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<20_000 {
            let intDigits = Int(rng.next() % 12) + 1
            let fracDigits = Int(rng.next() % 12)
            var text = rng.next() % 2 == 0 ? "-" : ""
            text += String(rng.next() % 9 + 1)
            for _ in 1..<intDigits { text += String(rng.next() % 10) }
            text += "."
            for _ in 0...fracDigits { text += String(rng.next() % 10) }
            if rng.next() % 3 == 0 { text += "e" + String(Int(rng.next() % 60) - 30) }
            guard case .double(let d) = try parsed(text) else {
                Issue.record("\(text) did not parse as a double")
                continue
            }
            let expected = try #require(Double(text))
            #expect(d.bitPattern == expected.bitPattern, "\(text)")
        }
    }

    @Test func randomDoublesRoundTripBitExactly() throws {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<20_000 {
            let d = Double(bitPattern: rng.next())
            guard d.isFinite else { continue }
            let bytes = JSONValue.double(d).serialized()
            guard case .double(let back) = try JSONValue.parse(bytes) else {
                Issue.record("\(d) did not come back as a double")
                continue
            }
            #expect(back.bitPattern == d.bitPattern, "\(d)")
        }
    }

    @Test func emptyContainers() throws {
        #expect(try parsed("[]") == .array([]))
        #expect(try parsed("{}") == .object(JSONObject()))
        #expect(try parsed(" [ ] ") == .array([]))
        #expect(try parsed("{ \t\r\n}") == .object([:]))
        #expect(try parsed("[[],{}]") == .array([.array([]), .object([:])]))
    }

    @Test func nested() throws {
        let value = try parsed(#"{"a":[1,{"b":[true,null,{"c":"d"}]}],"e":{"f":{"g":[]}}}"#)
        let expected: JSONValue = .object([
            "a": .array([.int(1), .object(["b": .array([.bool(true), .null, .object(["c": .string("d")])])])]),
            "e": .object(["f": .object(["g": .array([])])]),
        ])
        #expect(value == expected)
    }

    @Test func whitespaceEverywhere() throws {
        let value = try parsed(" \t\r\n{ \"a\" \n: \t[ 1 , 2.5 ,\r\n\"x\" ] , \"b\" : null } \n")
        #expect(value == .object(["a": .array([.int(1), .double(2.5), .string("x")]), "b": .null]))
    }

    @Test func keyOrderIsKept() throws {
        let o = try object(parsed(#"{"z":1,"a":2,"m":3,"b":4}"#))
        #expect(o.keys == ["z", "a", "m", "b"])
    }

    @Test func duplicateKeysReplaceInPlace() throws {
        let o = try object(parsed(#"{"a":1,"b":2,"a":3}"#))
        #expect(o.keys == ["a", "b"])
        #expect(o["a"] == .int(3))
        #expect(JSONValue.object(o).serializedString() == #"{"a":3,"b":2}"#)

        // Same with a nested object and several repeats.
        let nested = try object(parsed(#"{"x":{"k":1,"k":2,"k":{"deep":true}},"y":0,"x":[1]}"#))
        #expect(nested.keys == ["x", "y"])
        #expect(nested["x"] == .array([.int(1)]))
    }

    @Test func duplicateKeysInLargeObjects() throws {
        // Above the hash-index threshold the check takes another path.
        var text = "{"
        for i in 0..<40 { text += "\"k\(i)\":\(i)," }
        text += "\"k5\":\"again\",\"last\":true}"
        let o = try object(parsed(text))
        #expect(o.count == 41)
        #expect(o.keys[5] == "k5")
        #expect(o["k5"] == .string("again"))
        #expect(o.keys.last == "last")
        #expect(o["k39"] == .int(39))
    }

    @Test func keysWithMatchingFingerprintsAreNotDuplicates() throws {
        // Same length, first, middle and last byte: only the full comparison tells them apart.
        let o = try object(parsed(#"{"axcd":1,"aycd":2,"a\u0078cd":3}"#))
        #expect(o.keys == ["axcd", "aycd"])
        #expect(o["axcd"] == .int(3))
        #expect(o["aycd"] == .int(2))
    }

    @Test func keysCompareByBytesNotCanonicalEquivalence() throws {
        let o = try object(parsed("{\"\u{E9}\":1,\"e\u{301}\":2}"))
        #expect(o.count == 2)
        #expect(o["\u{E9}"] == .int(1))
        #expect(o["e\u{301}"] == .int(2))
    }

    @Test func allInputFormsAgree() throws {
        let text = #"{"a":[1,2,{"b":"c\u00e9"}],"d":-1.5e3}"#
        let bytes = Array(text.utf8)
        let fromString = try JSONValue.parse(text)
        let fromBytes = try JSONValue.parse(bytes)
        let fromRaw = try bytes.withUnsafeBytes { raw in
            Result { () throws(JSONParseError) in try JSONValue.parse(raw) }
        }.get()
        #expect(fromString == fromBytes)
        #expect(fromString == fromRaw)
    }

    @Test func parsesFromASliceOfALargerBuffer() throws {
        // The parser must not read past the buffer it was given.
        let bytes = Array(#"["abc"]XXXXXXXXXXXXXXXX"#.utf8)
        let value = try bytes.withUnsafeBytes { raw in
            Result { () throws(JSONParseError) in try JSONValue.parse(UnsafeRawBufferPointer(rebasing: raw[0..<7])) }
        }.get()
        #expect(value == .array([.string("abc")]))
    }

    @Test func depthUpToTheLimitIsAccepted() throws {
        let depth = 512
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        var value = try parsed(text)
        var levels = 0
        while case .array(let inner) = value {
            levels += 1
            guard let first = inner.first else { break }
            value = first
        }
        #expect(levels == depth)

        let objects = String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth)
        #expect(throws: Never.self) { try parsed(objects) }
    }

    @Test func depthLimitCanBeRaised() throws {
        // The parser is iterative, so a raised limit costs no native stack while parsing.
        // (The walk below unwraps one level at a time, so the value is also freed top-down.)
        let depth = 100_000
        let text = String(repeating: "[", count: depth) + "0" + String(repeating: "]", count: depth)
        #expect(throws: JSONParseError.self) { try parsed(text) }
        var current = try parsed(text, maxDepth: depth)
        var levels = 0
        while case .array(let inner) = current, let first = inner.first {
            levels += 1
            current = first
        }
        #expect(levels == depth)
        #expect(current == .int(0))
    }
}

/// A small deterministic generator so random tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
