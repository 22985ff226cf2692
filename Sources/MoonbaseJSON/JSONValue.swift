/// A parsed JSON value.
///
/// A plain enum so callers switch on the case directly: no type probing, no thrown errors
/// when walking a value. Integers and non-integers are kept apart because records and Lua
/// both distinguish them (`1` stays an integer, `1.0` and `1e2` stay floats).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number literal without `.` or exponent whose value fits `Int64`.
    case int(Int64)
    /// Every other number: fractions, exponents, integers that overflow `Int64`.
    case double(Double)
    case string(String)
    case array([JSONValue])
    /// An object; keys keep the order in which they were parsed or inserted.
    case object(JSONObject)
}

extension JSONValue {
    /// Parses one JSON document (RFC 8259, strict) from UTF-8 bytes.
    ///
    /// Strict means: no comments, trailing commas, leading zeros, NaN/Infinity, single quotes,
    /// unescaped control characters, invalid UTF-8 or lone surrogates; whitespace is space,
    /// tab, CR and LF only. Any top-level value is accepted. Integer literals that fit `Int64`
    /// become `.int`, all other numbers `.double` (a number too large for a Double is an error).
    /// In objects, a later duplicate key replaces the earlier value in place.
    ///
    /// - Parameters:
    ///   - bytes: the whole document; nothing but whitespace may follow the top value.
    ///   - maxDepth: how many arrays/objects may be nested; deeper input fails with
    ///     "nesting too deep". The parser itself is iterative; the limit protects the
    ///     recursive code that later walks the value (serializing, converting, releasing).
    /// - Throws: `JSONParseError` with a message and the byte offset of the problem.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 512) throws(JSONParseError) -> JSONValue {
        try parseResult(bytes, maxDepth: maxDepth).get()
    }

    /// Parses one JSON document (RFC 8259, strict) from UTF-8 bytes.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 512) throws(JSONParseError) -> JSONValue {
        // withUnsafeBytes only rethrows untyped errors, so carry the outcome out as a Result.
        try bytes.withUnsafeBytes { parseResult($0, maxDepth: maxDepth) }.get()
    }

    /// Parses one JSON document (RFC 8259, strict) from a string.
    public static func parse(_ text: String, maxDepth: Int = 512) throws(JSONParseError) -> JSONValue {
        var text = text  // withUTF8 needs a mutable copy; native strings are not copied.
        return try text.withUTF8 { parseResult(UnsafeRawBufferPointer($0), maxDepth: maxDepth) }.get()
    }

    /// Compact JSON (no spaces), object keys in object order.
    public func serialized() -> [UInt8] {
        ByteSink.bytes { $0.writeValue(self) }
    }

    /// Compact JSON (no spaces) as a `String`.
    public func serializedString() -> String {
        String(decoding: serialized(), as: UTF8.self)
    }

    /// Appends compact JSON for this value to `buffer`.
    public func write(into buffer: inout [UInt8]) {
        ByteSink.appending(to: &buffer) { $0.writeValue(self) }
    }
}
