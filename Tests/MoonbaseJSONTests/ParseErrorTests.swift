import Testing
@testable import MoonbaseJSON

/// One malformed input with the exact error it must produce.
struct Malformed: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let message: String
    let offset: Int

    init(_ name: String, _ text: String, _ message: String, _ offset: Int) {
        self.init(name, Array(text.utf8), message, offset)
    }

    init(_ name: String, _ bytes: [UInt8], _ message: String, _ offset: Int) {
        self.name = name
        self.bytes = bytes
        self.message = message
        self.offset = offset
    }

    var testDescription: String { name }
}

/// The error parsing `bytes` produces, or nil if it parsed.
func parseError(_ bytes: [UInt8], maxDepth: Int = 512) -> JSONParseError? {
    do {
        _ = try JSONValue.parse(bytes, maxDepth: maxDepth)
        return nil
    } catch {
        return error
    }
}

let malformedCases: [Malformed] = [
    // Empty and truncated input.
    Malformed("empty body", "", "unexpected end of input at offset 0", 0),
    Malformed("only whitespace", " \n\t ", "unexpected end of input at offset 4", 4),
    Malformed("open object", "{", "unexpected end of input at offset 1", 1),
    Malformed("open array", "[1,", "unexpected end of input at offset 3", 3),
    Malformed("object missing value", #"{"a":"#, "unexpected end of input at offset 5", 5),
    Malformed("object missing close", #"{"a":1"#, "unexpected end of input at offset 6", 6),

    // Structure.
    Malformed("trailing comma in array", "[1,]", "unexpected character ']' at offset 3", 3),
    Malformed("trailing comma in object", #"{"a":1,}"#, "unexpected character '}' at offset 7", 7),
    Malformed("leading comma", "[,1]", "unexpected character ',' at offset 1", 1),
    Malformed("double comma", "[1,,2]", "unexpected character ',' at offset 3", 3),
    Malformed("missing comma", "[1 2]", "unexpected character '2' at offset 3", 3),
    Malformed("missing colon", #"{"a" 1}"#, "unexpected character '1' at offset 5", 5),
    Malformed("missing value", #"{"a":}"#, "unexpected character '}' at offset 5", 5),
    Malformed("unquoted key", "{a:1}", "unexpected character 'a' at offset 1", 1),
    Malformed("number key", "{1:2}", "unexpected character '1' at offset 1", 1),
    Malformed("single quotes", "['a']", "unexpected character ''' at offset 1", 1),
    Malformed("mismatched close", "[1}", "unexpected character '}' at offset 2", 2),
    Malformed("mismatched close object", #"{"a":1]"#, "unexpected character ']' at offset 6", 6),
    Malformed("stray close", "]", "unexpected character ']' at offset 0", 0),
    Malformed("colon in array", "[1:2]", "unexpected character ':' at offset 2", 2),
    Malformed("line comment", "// c\n1", "unexpected character '/' at offset 0", 0),
    Malformed("block comment", "[1/* c */]", "unexpected character '/' at offset 2", 2),

    // Trailing content.
    Malformed("two values", "1 2", "unexpected character '2' at offset 2", 2),
    Malformed("two objects", "{}{}", "unexpected character '{' at offset 2", 2),
    Malformed("garbage after object", #"{"a":1} x"#, "unexpected character 'x' at offset 8", 8),
    Malformed("NUL after value", [0x31, 0x00], "unexpected byte 0x00 at offset 1", 1),

    // Whitespace that JSON does not allow.
    Malformed("form feed", "\u{0C}1", "unexpected byte 0x0C at offset 0", 0),
    Malformed("vertical tab", "[\u{0B}1]", "unexpected byte 0x0B at offset 1", 1),
    Malformed("no-break space", "\u{A0}1", "unexpected character '\u{A0}' at offset 0", 0),
    Malformed("byte order mark", "\u{FEFF}{}", "unexpected character '\u{FEFF}' at offset 0", 0),

    // Literals.
    Malformed("NaN", "NaN", "unexpected character 'N' at offset 0", 0),
    Malformed("Infinity", "Infinity", "unexpected character 'I' at offset 0", 0),
    Malformed("negative Infinity", "-Infinity", "unexpected character 'I' at offset 1", 1),
    Malformed("capital True", "True", "unexpected character 'T' at offset 0", 0),
    Malformed("truncated true", "tru", "unexpected end of input at offset 3", 3),
    Malformed("misspelled false", "[fals]", "unexpected character ']' at offset 5", 5),
    Malformed("misspelled null", "nulL", "unexpected character 'L' at offset 3", 3),
    Malformed("undefined", "undefined", "unexpected character 'u' at offset 0", 0),

    // Numbers.
    Malformed("leading zero", "01", "leading zero in number at offset 0", 0),
    Malformed("negative leading zero", "-01", "leading zero in number at offset 1", 1),
    Malformed("double zero in array", "[00]", "leading zero in number at offset 1", 1),
    Malformed("plus sign", "+1", "unexpected character '+' at offset 0", 0),
    Malformed("bare minus", "-", "unexpected end of input at offset 1", 1),
    Malformed("minus then space", "- 1", "unexpected character ' ' at offset 1", 1),
    Malformed("leading dot", ".5", "unexpected character '.' at offset 0", 0),
    Malformed("trailing dot", "1.", "unexpected end of input at offset 2", 2),
    Malformed("dot then exponent", "1.e5", "unexpected character 'e' at offset 2", 2),
    Malformed("empty exponent", "1e", "unexpected end of input at offset 2", 2),
    Malformed("signed empty exponent", "1e+", "unexpected end of input at offset 3", 3),
    Malformed("exponent letter", "[1eX]", "unexpected character 'X' at offset 3", 3),
    Malformed("hex", "0x10", "unexpected character 'x' at offset 1", 1),
    Malformed("too large", "1e400", "number out of range at offset 0", 0),
    Malformed("too large negative", "[-1.5e999]", "number out of range at offset 1", 1),

    // Strings.
    Malformed("unterminated string", #""abc"#, "unterminated string at offset 0", 0),
    Malformed("unterminated value string", #"{"a":"b"#, "unterminated string at offset 5", 5),
    Malformed("unterminated key", #"{"ab"#, "unterminated string at offset 1", 1),
    Malformed("unterminated after escape", #"["a\"#, "unterminated string at offset 1", 1),
    Malformed("unterminated after escaped quote", #"["a\""#, "unterminated string at offset 1", 1),
    Malformed("unterminated long string", "\"" + String(repeating: "x", count: 100), "unterminated string at offset 0", 0),
    Malformed("raw newline", "\"a\nb\"", "unescaped control character 0x0A in string at offset 2", 2),
    Malformed("raw tab", "[\"\t\"]", "unescaped control character 0x09 in string at offset 2", 2),
    Malformed("raw NUL", [0x22, 0x61, 0x00, 0x22], "unescaped control character 0x00 in string at offset 2", 2),
    Malformed("raw control after escape", "\"\\n\u{1F}\"", "unescaped control character 0x1F in string at offset 3", 3),
    Malformed("raw control in long string", "\"0123456789abcdef\u{01}\"", "unescaped control character 0x01 in string at offset 17", 17),
    Malformed("unknown escape", #""\x""#, "invalid escape '\\x' at offset 1", 1),
    Malformed("escaped single quote", #""\'""#, "invalid escape '\\'' at offset 1", 1),
    Malformed("short unicode escape", #""\u12""#, "invalid \\u escape at offset 1", 1),
    Malformed("non-hex unicode escape", #""ab\u00G1""#, "invalid \\u escape at offset 3", 3),
    Malformed("truncated unicode escape", #""\u00"#, "unterminated string at offset 0", 0),
    Malformed("lone high surrogate", #""\uD800""#, "lone surrogate \\uD800 at offset 1", 1),
    Malformed("lone low surrogate", #""\uDC00""#, "lone surrogate \\uDC00 at offset 1", 1),
    Malformed("high surrogate then letter", #""\uD83Dx""#, "lone surrogate \\uD83D at offset 1", 1),
    Malformed("high surrogate then BMP escape", #""\uD83D\u0041""#, "lone surrogate \\uD83D at offset 1", 1),
    Malformed("two high surrogates", #""\uD83D\uD83D""#, "lone surrogate \\uD83D at offset 1", 1),
    Malformed("surrogate pair reversed", #""\uDE00\uD83D""#, "lone surrogate \\uDE00 at offset 1", 1),
    Malformed("bad hex in low surrogate", #""\uD83D\uDEZ0""#, "invalid \\u escape at offset 7", 7),

    // Invalid UTF-8.
    Malformed("invalid byte in string", [0x22, 0x61, 0xFF, 0x22], "invalid UTF-8 at offset 2", 2),
    Malformed("invalid byte late in long string", Array("\"0123456789abcdef".utf8) + [0xFE, 0x22], "invalid UTF-8 at offset 17", 17),
    Malformed("overlong slash", [0x22, 0xC0, 0xAF, 0x22], "invalid UTF-8 at offset 1", 1),
    Malformed("overlong 3-byte", [0x22, 0xE0, 0x80, 0xAF, 0x22], "invalid UTF-8 at offset 1", 1),
    Malformed("UTF-8 surrogate", [0x22, 0xED, 0xA0, 0x80, 0x22], "invalid UTF-8 at offset 1", 1),
    Malformed("beyond U+10FFFF", [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], "invalid UTF-8 at offset 1", 1),
    Malformed("truncated sequence", [0x22, 0x41, 0xE2, 0x82, 0x22], "invalid UTF-8 at offset 2", 2),
    Malformed("lone continuation", [0x22, 0xC3, 0xA9, 0x80, 0x22], "invalid UTF-8 at offset 3", 3),
    Malformed("invalid after escape", [0x22, 0x5C, 0x6E, 0xC3, 0x28, 0x22], "invalid UTF-8 at offset 3", 3),
    Malformed("invalid in key", [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D], "invalid UTF-8 at offset 2", 2),
    Malformed("invalid outside string", [0x5B, 0xFF, 0x5D], "invalid UTF-8 at offset 1", 1),
    Malformed("valid UTF-8 outside string", "[\u{E9}]", "unexpected character '\u{E9}' at offset 1", 1),
]

@Suite("Rejecting malformed JSON")
struct ParseErrorTests {
    @Test(arguments: malformedCases)
    func malformed(_ c: Malformed) throws {
        let error = try #require(parseError(c.bytes), "\(c.name) should not parse")
        #expect(error.message == c.message)
        #expect(error.offset == c.offset)
        #expect(error.description == c.message)
    }

    @Test(arguments: malformedCases)
    func stringAndBufferInputsAgree(_ c: Malformed) throws {
        // The String overload can only carry valid UTF-8; compare where both exist.
        let expected = try #require(parseError(c.bytes))
        let fromRaw = c.bytes.withUnsafeBytes { raw in
            Result { () throws(JSONParseError) in try JSONValue.parse(raw) }
        }
        #expect(throws: expected) { try fromRaw.get() }
        guard let text = String(validating: c.bytes, as: UTF8.self) else { return }
        #expect(throws: expected) { try JSONValue.parse(text) }
    }

    @Test func nestingBeyondTheLimit() throws {
        let arrays = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        let error = try #require(parseError(Array(arrays.utf8)))
        #expect(error.offset == 512)
        #expect(error.message == "nesting too deep (more than 512 levels) at offset 512")

        let objects = String(repeating: #"{"k":"#, count: 513) + "1" + String(repeating: "}", count: 513)
        let objectError = try #require(parseError(Array(objects.utf8)))
        #expect(objectError.offset == 512 * 5)
        #expect(objectError.message.hasPrefix("nesting too deep"))
    }

    @Test func customDepthLimit() throws {
        #expect(parseError(Array("[[[]]]".utf8), maxDepth: 3) == nil)
        let error = try #require(parseError(Array("[[[[]]]]".utf8), maxDepth: 3))
        #expect(error == JSONParseError(message: "nesting too deep (more than 3 levels) at offset 3", offset: 3))
        // Empty containers count too; scalars need no depth at all.
        #expect(parseError(Array("[{}]".utf8), maxDepth: 1)?.offset == 1)
        #expect(parseError(Array("[]".utf8), maxDepth: 0)?.offset == 0)
        #expect(parseError(Array("42".utf8), maxDepth: 0) == nil)
    }

    @Test func errorsInsideDeepStructuresReleaseEverything() throws {
        // Errors thrown with values on the parser's stacks (which spill to the heap past 16
        // levels / 32 values) must clean up; run a few shapes to exercise those paths.
        var text = ""
        for i in 0..<100 { text += #"{"k\#(i)":["s\#(i)", "#  }
        text += "1, ]"
        let error = try #require(parseError(Array(text.utf8)))
        #expect(error.message.hasPrefix("unexpected character ']'"))

        let wide = "[" + (0..<1000).map { "\"v\($0)\"" }.joined(separator: ",") + ",}"
        #expect(parseError(Array(wide.utf8))?.message.hasPrefix("unexpected character '}'") == true)
    }

    @Test func everyTruncationOfAValidDocumentFails() throws {
        let text = #"{"a":[1,-2.5e3,true,false,null,"x\n\u00e9\ud83d\ude00"],"b":{"c":{}}}"#
        let bytes = Array(text.utf8)
        #expect(parseError(bytes) == nil)
        for length in 0..<bytes.count {
            let prefix = Array(bytes[0..<length])
            let error = parseError(prefix)
            #expect(error != nil, "prefix of length \(length) parsed")
            if let error { #expect(error.offset <= length) }
        }
    }
}
