import Testing
@testable import MoonbaseJSON

@Suite("Strings, unicode and escapes")
struct StringTests {
    @Test func simpleEscapes() throws {
        #expect(try parsed(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{08}\u{0C}\n\r\t"))
    }

    @Test func unicodeEscapes() throws {
        #expect(try parsed(#""\u0041\u00e9\u00E9\u4e2d""#) == .string("A\u{E9}\u{E9}\u{4E2D}"))
        #expect(try parsed(#""\u0000""#) == .string("\u{0}"))
        #expect(try parsed(#""\uFFFF""#) == .string("\u{FFFF}"))
        #expect(try parsed(#""\u2028\u2029""#) == .string("\u{2028}\u{2029}"))
    }

    @Test func surrogatePairs() throws {
        #expect(try parsed(#""\uD83D\uDE00""#) == .string("\u{1F600}"))
        #expect(try parsed(#""\ud83d\ude00""#) == .string("\u{1F600}"))
        #expect(try parsed(#""\uD800\uDC00""#) == .string("\u{10000}"))
        #expect(try parsed(#""\uDBFF\uDFFF""#) == .string("\u{10FFFF}"))
        #expect(try parsed(#""a\uD83D\uDE00b\uD83D\uDE01""#) == .string("a\u{1F600}b\u{1F601}"))
    }

    @Test func rawUTF8() throws {
        let s = "caf\u{E9} \u{1F600} \u{4E2D}\u{6587} \u{10FFFF} e\u{301}"
        #expect(try parsed("\"" + s + "\"") == .string(s))
        // Raw UTF-8 mixed with escapes.
        #expect(try parsed("\"\u{E9}\\n\u{1F600}\\u00e9\"") == .string("\u{E9}\n\u{1F600}\u{E9}"))
    }

    @Test func escapesAndUTF8AtEveryAlignment() throws {
        // The parser scans 8 bytes at a time: put the interesting byte at every offset.
        for prefix in 0..<20 {
            let pad = String(repeating: "x", count: prefix)
            #expect(try parsed("\"\(pad)\\n\(pad)\"") == .string("\(pad)\n\(pad)"))
            #expect(try parsed("\"\(pad)\u{E9}\(pad)\"") == .string("\(pad)\u{E9}\(pad)"))
            #expect(try parsed("\"\(pad)\\\"\"") == .string("\(pad)\""))
            #expect(try parsed("[\"\(pad)\",\"\(pad)\"]") == .array([.string(pad), .string(pad)]))
            let error = parseError(Array("\"\(pad)".utf8) + [0xFF] + Array("\(pad)\"".utf8))
            #expect(error?.message == "invalid UTF-8 at offset \(prefix + 1)")
            let control = parseError(Array("\"\(pad)\u{01}\"".utf8))
            #expect(control?.offset == prefix + 1)
        }
    }

    @Test func longStrings() throws {
        let plain = String(repeating: "abcdefghij", count: 100_000)
        #expect(try parsed("\"\(plain)\"") == .string(plain))
        let unicode = String(repeating: "\u{E9}\u{1F600}x", count: 50_000)
        #expect(try parsed("\"\(unicode)\"") == .string(unicode))
        let escaped = String(repeating: "a\\nb\\u00e9", count: 50_000)
        #expect(try parsed("\"\(escaped)\"") == .string(String(repeating: "a\nb\u{E9}", count: 50_000)))
    }

    @Test func stringsSurviveRoundTrips() throws {
        let samples = ["", " ", "plain", "quote\"", "back\\slash", "/slash", "\u{0}\u{1}\u{1F}", "tab\tnl\n",
                       "\u{E9}", "\u{1F600}", "\u{FEFF}bom", "\u{7F}", "e\u{301}", String(repeating: "\u{4E2D}", count: 100)]
        for s in samples {
            let value = JSONValue.string(s)
            #expect(try JSONValue.parse(value.serialized()) == value, "\(s.debugDescription)")
            let key = JSONValue.object([s: .string(s)])
            #expect(try JSONValue.parse(key.serialized()) == key)
        }
    }
}

@Suite("Round trips and big inputs")
struct RoundTripTests {
    @Test(arguments: [
        #"{"title":"Hello","views":1234,"rating":4.5,"tags":["a","b"],"meta":{"x":null,"y":false},"n":-0.001}"#,
        #"[1,1.0,1e2,-1,-1.5e-7,9223372036854775807,-9223372036854775808,9223372036854775808]"#,
        #"{"":"","a":{"":{"":[]}}}"#,
        #"[[[[[[[[[[]]]]]]]]]]"#,
        #""\u0001\b\f\n\r\t\"\\/\u00e9\ud83d\ude00""#,
        "0", "-0", "0.5", "true", "null",
    ])
    func parseSerializeParse(_ text: String) throws {
        let first = try parsed(text)
        let bytes = first.serialized()
        let second = try JSONValue.parse(bytes)
        #expect(second == first)
        // Serializing is deterministic and idempotent.
        #expect(second.serialized() == bytes)
    }

    @Test func intVersusDoubleSurvivesRoundTrip() throws {
        let value = try parsed("[1,1.0,1e2,9223372036854775808,-0.0]")
        #expect(value.serializedString() == "[1,1.0,100.0,9.223372036854776e+18,-0.0]")
        #expect(try JSONValue.parse(value.serialized()) == value)
    }

    @Test func orderSurvivesRoundTrip() throws {
        let text = #"{"zeta":1,"alpha":2,"mid":{"y":1,"x":2},"beta":3}"#
        #expect(try parsed(text).serializedString() == text)
    }

    @Test func randomValuesRoundTrip() throws {
        var rng = SplitMix64(seed: 2024)
        for _ in 0..<300 {
            let value = randomValue(&rng, depth: 0)
            let bytes = value.serialized()
            let back = try JSONValue.parse(bytes)
            #expect(back == value)
            #expect(back.serialized() == bytes)
        }
    }

    @Test func bigArray() throws {
        let count = 200_000
        let text = "[" + (0..<count).map { i in i % 3 == 0 ? "\(i)" : i % 3 == 1 ? "\(i).5" : "\"s\(i)\"" }.joined(separator: ",") + "]"
        let value = try parsed(text)
        guard case .array(let elements) = value else {
            Issue.record("not an array")
            return
        }
        #expect(elements.count == count)
        #expect(elements[0] == .int(0))
        #expect(elements[1] == .double(1.5))
        #expect(elements[2] == .string("s2"))
        #expect(elements[count - 1] == .double(Double(count - 1) + 0.5))
        #expect(value.serializedString() == text)
    }

    @Test func bigObject() throws {
        let count = 50_000
        let text = "{" + (0..<count).map { "\"key\($0)\":\($0)" }.joined(separator: ",") + "}"
        let o = try object(parsed(text))
        #expect(o.count == count)
        #expect(o["key0"] == .int(0))
        #expect(o["key49999"] == .int(49_999))
        #expect(o["key50000"] == nil)
        #expect(o.keys.prefix(3) == ["key0", "key1", "key2"])
        #expect(JSONValue.object(o).serializedString() == text)
    }

    @Test func manyRecords() throws {
        // A batch of record-shaped objects, as a list endpoint would return.
        let record = #"{"id":"0193a5c0-7f1e-7cc3-9a4b-2f0e1d3c4b5a","title":"Hello world","body":"Some text","author":"alice@example.com","views":1234,"rating":4.5,"published":true,"tags":["swift","lua"],"meta":{"lang":"en"},"draft":null}"#
        let text = "[" + Array(repeating: record, count: 5_000).joined(separator: ",") + "]"
        let value = try parsed(text)
        guard case .array(let records) = value else {
            Issue.record("not an array")
            return
        }
        #expect(records.count == 5_000)
        #expect(records.allSatisfy { $0 == records[0] })
        #expect(value.serializedString() == text)
    }
}

/// A random JSON value; strings include escapes, control characters and non-ASCII.
func randomValue(_ rng: inout SplitMix64, depth: Int) -> JSONValue {
    let pick = rng.next() % (depth > 4 ? 5 : 7)
    switch pick {
    case 0: return .null
    case 1: return .bool(rng.next() % 2 == 0)
    case 2: return .int(Int64(bitPattern: rng.next()) >> (rng.next() % 64))
    case 3:
        let d = Double(bitPattern: rng.next())
        return .double(d.isFinite ? d : 0.5)
    case 4: return .string(randomString(&rng))
    case 5: return .array((0..<Int(rng.next() % 6)).map { _ in randomValue(&rng, depth: depth + 1) })
    default:
        var o = JSONObject()
        for _ in 0..<Int(rng.next() % 20) { o[randomString(&rng)] = randomValue(&rng, depth: depth + 1) }
        return .object(o)
    }
}

func randomString(_ rng: inout SplitMix64) -> String {
    let alphabet: [Unicode.Scalar] = ["a", "b", "Z", "0", " ", "\"", "\\", "/", "\n", "\u{0}", "\u{1F}", "\u{7F}",
                                      "\u{E9}", "\u{301}", "\u{4E2D}", "\u{1F600}", "\u{FFFF}", "\u{10FFFF}"]
    var s = String.UnicodeScalarView()
    for _ in 0..<Int(rng.next() % 24) { s.append(alphabet[Int(rng.next() % UInt64(alphabet.count))]) }
    return String(s)
}
