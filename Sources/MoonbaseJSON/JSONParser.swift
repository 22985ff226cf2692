// A strict RFC 8259 parser over raw bytes.
//
// Design notes (this is on the hot path of every record write):
// - One pass over an UnsafePointer with an integer cursor; no intermediate tokens.
// - Iterative, with explicit container stacks, so nesting depth never costs native stack
//   (a request body can be parsed on any thread, whatever its stack size).
// - Strings are scanned 8 bytes at a time. Strings without escapes are copied straight into
//   a String; only strings with escapes go through a scratch buffer. UTF-8 is validated by
//   us (String's initializers would repair bad input instead of rejecting it), and only
//   when a string has non-ASCII bytes at all.
// - Numbers are accumulated while scanning; the common doubles take an exact fast path,
//   the rest go through the standard library's correctly rounded conversion.
// - Errors are typed throws and only built on the failure path.

extension JSONValue {
    /// Parses `bytes`, returning the error instead of throwing it (closures such as
    /// `withUnsafeBytes` only rethrow untyped errors).
    @usableFromInline
    internal static func parseResult(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) -> Result<JSONValue, JSONParseError> {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            return .failure(JSONParseError(message: "unexpected end of input at offset 0", offset: 0))
        }
        // The parser's stacks start out in stack memory; only deep or wide documents spill
        // to the heap.
        return withUnsafeTemporaryAllocation(of: JSONParser.Frame.self, capacity: 16) { frames in
            withUnsafeTemporaryAllocation(of: JSONValue.self, capacity: 32) { values in
                withUnsafeTemporaryAllocation(of: String.self, capacity: 32) { keys in
                    withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 32) { fingerprints in
                        var parser = JSONParser(
                            base: base.assumingMemoryBound(to: UInt8.self), count: bytes.count, maxDepth: maxDepth,
                            frames: MoveStack(initialStorage: frames), values: MoveStack(initialStorage: values),
                            keys: MoveStack(initialStorage: keys), fingerprints: MoveStack(initialStorage: fingerprints))
                        defer { parser.release() }
                        do throws(JSONParseError) {
                            return .success(try parser.parseDocument())
                        } catch {
                            return .failure(error)
                        }
                    }
                }
            }
        }
    }
}

// ASCII codes used by the parser.
private let quote = UInt8(ascii: "\"")
private let backslash = UInt8(ascii: "\\")
private let comma = UInt8(ascii: ",")
private let colon = UInt8(ascii: ":")
private let openBrace = UInt8(ascii: "{")
private let closeBrace = UInt8(ascii: "}")
private let openBracket = UInt8(ascii: "[")
private let closeBracket = UInt8(ascii: "]")
private let minus = UInt8(ascii: "-")
private let plus = UInt8(ascii: "+")
private let zero = UInt8(ascii: "0")
private let nine = UInt8(ascii: "9")
private let dot = UInt8(ascii: ".")

/// Exactly representable powers of ten, for the fast double path.
private let exactPowersOfTen: [Double] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]

internal struct JSONParser {
    let base: UnsafePointer<UInt8>
    let end: Int
    let maxDepth: Int
    var pos: Int = 0
    /// Reused for strings with escapes.
    var scratch: [UInt8] = []

    /// Open containers, innermost last.
    var frames: MoveStack<Frame>
    /// Finished elements of all open containers (array elements and object values).
    var values: MoveStack<JSONValue>
    /// Keys of all open objects; an object's keys pair up with its values in order.
    var keys: MoveStack<String>
    /// A cheap fingerprint per key in `keys`, so duplicate checks compare integers.
    var fingerprints: MoveStack<UInt64>
    /// The fingerprint of the last string parsed.
    var lastFingerprint: UInt64 = 0

    struct Frame {
        var isObject: Bool
        var valueStart: Int
        var keyStart: Int
    }

    init(base: UnsafePointer<UInt8>, count: Int, maxDepth: Int,
         frames: MoveStack<Frame>, values: MoveStack<JSONValue>, keys: MoveStack<String>, fingerprints: MoveStack<UInt64>) {
        self.base = base
        self.end = count
        self.maxDepth = maxDepth
        self.frames = frames
        self.values = values
        self.keys = keys
        self.fingerprints = fingerprints
    }

    /// Frees the stacks (and whatever a failed parse left on them).
    mutating func release() {
        frames.release()
        values.release()
        keys.release()
        fingerprints.release()
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        let value = try parseTree()
        skipWhitespace()
        guard pos == end else { throw unexpected(at: pos) }
        return value
    }

    // MARK: - Structure

    /// Parses one value starting at `pos` (whitespace already skipped).
    ///
    /// Elements go onto shared stacks while their container is open and are *moved* into an
    /// exactly sized array when it closes: no regrowth per container, no retain/release.
    mutating func parseTree() throws(JSONParseError) -> JSONValue {
        var value: JSONValue

        nextValue: while true {
            guard pos < end else { throw unexpected(at: pos) }
            switch base[pos] {
            case quote:
                value = .string(try parseString())
            case openBrace:
                let open = pos
                pos &+= 1
                skipWhitespace()
                guard frames.count < maxDepth else { throw tooDeep(at: open) }
                if pos < end, base[pos] == closeBrace {
                    pos &+= 1
                    value = .object(JSONObject())
                } else {
                    frames.push(Frame(isObject: true, valueStart: values.count, keyStart: keys.count))
                    pushKey(try parseKeyAndColon())
                    continue nextValue
                }
            case openBracket:
                let open = pos
                pos &+= 1
                skipWhitespace()
                guard frames.count < maxDepth else { throw tooDeep(at: open) }
                if pos < end, base[pos] == closeBracket {
                    pos &+= 1
                    value = .array([])
                } else {
                    frames.push(Frame(isObject: false, valueStart: values.count, keyStart: keys.count))
                    continue nextValue
                }
            case UInt8(ascii: "t"):
                try expectLiteral("true")
                value = .bool(true)
            case UInt8(ascii: "f"):
                try expectLiteral("false")
                value = .bool(false)
            case UInt8(ascii: "n"):
                try expectLiteral("null")
                value = .null
            case minus, zero...nine:
                value = try parseNumber()
            default:
                throw unexpected(at: pos)
            }

            // `value` is complete: hand it to the enclosing container, closing containers
            // for as long as their closing bracket follows.
            while frames.count > 0 {
                let frame = frames.top
                values.pushMovingOut(&value, leaving: .null)
                skipWhitespace()
                guard pos < end else { throw unexpected(at: pos) }
                let c = base[pos]
                if c == comma {
                    pos &+= 1
                    skipWhitespace()
                    if frame.isObject { pushKey(try parseKeyAndColon()) }
                    continue nextValue
                }
                guard c == (frame.isObject ? closeBrace : closeBracket) else { throw unexpected(at: pos) }
                pos &+= 1
                frames.drop()
                if frame.isObject {
                    value = .object(popObject(frame))
                } else {
                    value = .array(values.popArray(from: frame.valueStart))
                }
            }
            return value
        }
    }

    @inline(__always)
    mutating func pushKey(_ key: String) {
        keys.push(key)
        fingerprints.push(lastFingerprint)
    }

    /// Moves an object's keys and values off the stacks into one exactly sized array.
    @inline(__always)
    mutating func popObject(_ frame: Frame) -> JSONObject {
        let n = values.count &- frame.valueStart
        let keyBase = keys.base.unsafelyUnwrapped + frame.keyStart
        let valueBase = values.base.unsafelyUnwrapped + frame.valueStart

        // Duplicate keys are rare: compare fingerprints pairwise (n is small) and only
        // compare the keys themselves when fingerprints match. Large objects are checked
        // by JSONObject while it builds its hash index.
        var hasDuplicates = false
        if n <= JSONObject.indexThreshold {
            let prints = fingerprints.base.unsafelyUnwrapped + frame.keyStart
            var i = 1
            search: while i < n {
                let print = prints[i]
                var j = 0
                while j < i {
                    if prints[j] == print, sameKey(keyBase[j], keyBase[i]) {
                        hasDuplicates = true
                        break search
                    }
                    j &+= 1
                }
                i &+= 1
            }
        }

        // reserveCapacity + append rather than Array(unsafeUninitializedCapacity:), whose
        // unspecialized path looks up the storage class metadata at runtime on every call.
        var entries: [JSONObject.Entry] = []
        entries.reserveCapacity(n)
        for i in 0..<n {
            entries.append(JSONObject.Entry(key: (keyBase + i).move(), value: (valueBase + i).move()))
        }
        keys.count = frame.keyStart
        fingerprints.count = frame.keyStart
        values.count = frame.valueStart
        return JSONObject(parsedEntries: entries, hasDuplicates: hasDuplicates)
    }

    /// Parses `"key"` `:` and the whitespace after it; `pos` ends at the value.
    @inline(__always)
    mutating func parseKeyAndColon() throws(JSONParseError) -> String {
        guard pos < end, base[pos] == quote else { throw unexpected(at: pos) }
        let key = try parseString()
        skipWhitespace()
        guard pos < end, base[pos] == colon else { throw unexpected(at: pos) }
        pos &+= 1
        skipWhitespace()
        return key
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while pos < end {
            let c = base[pos]
            // Most bytes after a token are not whitespace: one compare settles them.
            if c > 0x20 { return }
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            pos &+= 1
        }
    }

    @inline(__always)
    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let n = literal.utf8CodeUnitCount
        let p = literal.utf8Start
        if pos &+ n <= end, memcmpBytes(base + pos, p, n) {
            pos &+= n
            return
        }
        // Find the first byte that differs, for the error offset.
        var i = 0
        while i < n, pos &+ i < end, base[pos &+ i] == p[i] { i &+= 1 }
        throw unexpected(at: pos &+ i)
    }

    // MARK: - Strings

    /// `pos` is at the opening quote; on return it is just past the closing quote.
    @inline(__always)
    mutating func parseString() throws(JSONParseError) -> String {
        let open = pos
        let start = pos &+ 1
        var sawNonASCII = false
        let special = nextSpecial(from: start, sawNonASCII: &sawNonASCII)
        if special < end, base[special] == quote {
            // Fast path: no escapes, one copy into the String. Only non-ASCII text needs a
            // UTF-8 check.
            pos = special &+ 1
            if sawNonASCII, let bad = firstInvalidUTF8(from: start, to: special) { throw invalidUTF8(at: bad) }
            let bytes = UnsafeBufferPointer(start: base + start, count: special &- start)
            lastFingerprint = fingerprint(bytes)
            return makeString(bytes)
        }
        return try parseStringWithEscapes(open: open, firstSpecial: special, sawNonASCII: sawNonASCII)
    }

    /// A String from bytes already known to be valid UTF-8.
    ///
    /// `String(unsafeUninitializedCapacity:)` skips validation for short ASCII strings (they
    /// become inline small strings); `String(decoding:)` scanned every string twice more.
    @inline(__always)
    func makeString(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        let n = bytes.count
        guard n > 0 else { return "" }
        return String(unsafeUninitializedCapacity: n) { target in
            target.baseAddress.unsafelyUnwrapped.update(from: bytes.baseAddress.unsafelyUnwrapped, count: n)
            return n
        }
    }

    /// Length and three sample bytes of a decoded string: equal strings have equal
    /// fingerprints, and distinct record keys almost never collide.
    @inline(__always)
    func fingerprint(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        let n = bytes.count
        guard n > 0 else { return 0 }
        return UInt64(truncatingIfNeeded: n) | UInt64(bytes[0]) &<< 32 | UInt64(bytes[n &>> 1]) &<< 40 | UInt64(bytes[n &- 1]) &<< 48
    }

    /// The index of the first `"`, `\` or control byte at or after `start`, or `end`.
    /// Sets `sawNonASCII` if a byte >= 0x80 was passed over.
    @inline(__always)
    func nextSpecial(from start: Int, sawNonASCII: inout Bool) -> Int {
        var i = start
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var seen: UInt64 = 0
        // 8 bytes at a time: classic "has a byte equal to / less than" bit tricks. Borrows only
        // run upwards, so the lowest flagged byte is always a true hit.
        while i &+ 8 <= end {
            let w = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
            let q = w ^ (ones &* 0x22)
            let b = w ^ (ones &* 0x5C)
            let hits = (((q &- ones) & ~q) | ((b &- ones) & ~b) | ((w &- ones &* 0x20) & ~w)) & highs
            if hits != 0 {
                let bits = UInt64(hits.trailingZeroBitCount) & ~7
                seen |= w & ((1 &<< bits) &- 1)  // only the bytes before the hit
                if seen & highs != 0 { sawNonASCII = true }
                return i &+ Int(bits &>> 3)
            }
            seen |= w
            i &+= 8
        }
        if seen & highs != 0 { sawNonASCII = true }
        while i < end {
            let c = base[i]
            if c == quote || c == backslash || c < 0x20 { return i }
            if c >= 0x80 { sawNonASCII = true }
            i &+= 1
        }
        return end
    }

    /// Slow path for strings with escapes (or errors): decode into `scratch`.
    mutating func parseStringWithEscapes(open: Int, firstSpecial: Int, sawNonASCII: Bool) throws(JSONParseError) -> String {
        scratch.removeAll(keepingCapacity: true)
        var sawNonASCII = sawNonASCII
        var runStart = open &+ 1
        var i = firstSpecial
        while true {
            guard i < end else { throw unterminated(at: open) }
            if i > runStart {
                scratch.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: i &- runStart))
            }
            let c = base[i]
            if c == quote { break }
            guard c == backslash else { throw controlCharacter(at: i) }
            i = try decodeEscape(at: i, open: open)
            runStart = i
            i = nextSpecial(from: i, sawNonASCII: &sawNonASCII)
        }
        pos = i &+ 1
        // Escapes decode to valid UTF-8 and are ASCII in the input, so validating the raw
        // input span finds exactly the bad bytes, with their input offsets.
        if sawNonASCII, let bad = firstInvalidUTF8(from: open &+ 1, to: i) { throw invalidUTF8(at: bad) }
        return scratch.withUnsafeBufferPointer { bytes in
            lastFingerprint = fingerprint(bytes)
            return makeString(bytes)
        }
    }

    /// Decodes the escape at `i` (a backslash) into `scratch`; returns the index after it.
    mutating func decodeEscape(at i: Int, open: Int) throws(JSONParseError) -> Int {
        guard i &+ 1 < end else { throw unterminated(at: open) }
        let byte: UInt8
        switch base[i &+ 1] {
        case quote: byte = quote
        case backslash: byte = backslash
        case UInt8(ascii: "/"): byte = UInt8(ascii: "/")
        case UInt8(ascii: "b"): byte = 0x08
        case UInt8(ascii: "f"): byte = 0x0C
        case UInt8(ascii: "n"): byte = 0x0A
        case UInt8(ascii: "r"): byte = 0x0D
        case UInt8(ascii: "t"): byte = 0x09
        case UInt8(ascii: "u"):
            return try decodeUnicodeEscape(at: i, open: open)
        default:
            throw invalidEscape(at: i)
        }
        scratch.append(byte)
        return i &+ 2
    }

    /// `\uXXXX`, joining a surrogate pair; a lone surrogate is an error.
    mutating func decodeUnicodeEscape(at i: Int, open: Int) throws(JSONParseError) -> Int {
        let unit = try hex4(at: i &+ 2, escape: i, open: open)
        var next = i &+ 6
        let scalar: UInt32
        switch unit {
        case 0xD800...0xDBFF:
            guard next &+ 1 < end, base[next] == backslash, base[next &+ 1] == UInt8(ascii: "u") else {
                throw loneSurrogate(unit, at: i)
            }
            let low = try hex4(at: next &+ 2, escape: next, open: open)
            guard (0xDC00...0xDFFF).contains(low) else { throw loneSurrogate(unit, at: i) }
            scalar = 0x10000 &+ ((unit &- 0xD800) &<< 10) &+ (low &- 0xDC00)
            next &+= 6
        case 0xDC00...0xDFFF:
            throw loneSurrogate(unit, at: i)
        default:
            scalar = unit
        }
        appendUTF8(scalar)
        return next
    }

    @inline(__always)
    func hex4(at i: Int, escape: Int, open: Int) throws(JSONParseError) -> UInt32 {
        var value: UInt32 = 0
        for k in 0..<4 {
            guard i &+ k < end else { throw unterminated(at: open) }
            let c = base[i &+ k]
            let digit: UInt8
            switch c {
            case zero...nine: digit = c &- zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c &- UInt8(ascii: "a") &+ 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c &- UInt8(ascii: "A") &+ 10
            default: throw invalidUnicodeEscape(at: escape)
            }
            value = value &<< 4 | UInt32(digit)
        }
        return value
    }

    @inline(__always)
    mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(truncatingIfNeeded: scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(truncatingIfNeeded: 0xC0 | scalar &>> 6))
            scratch.append(UInt8(truncatingIfNeeded: 0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            scratch.append(UInt8(truncatingIfNeeded: 0xE0 | scalar &>> 12))
            scratch.append(UInt8(truncatingIfNeeded: 0x80 | (scalar &>> 6) & 0x3F))
            scratch.append(UInt8(truncatingIfNeeded: 0x80 | scalar & 0x3F))
        default:
            scratch.append(UInt8(truncatingIfNeeded: 0xF0 | scalar &>> 18))
            scratch.append(UInt8(truncatingIfNeeded: 0x80 | (scalar &>> 12) & 0x3F))
            scratch.append(UInt8(truncatingIfNeeded: 0x80 | (scalar &>> 6) & 0x3F))
            scratch.append(UInt8(truncatingIfNeeded: 0x80 | scalar & 0x3F))
        }
    }

    // MARK: - Numbers

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = pos
        var i = pos
        let negative = base[i] == minus
        if negative { i &+= 1 }

        // Significant digits accumulate into `mantissa` while it stays exact.
        var mantissa: UInt64 = 0
        var exact = true
        var exponent = 0  // decimal exponent applied to mantissa
        @inline(__always) func accumulate(_ c: UInt8) {
            if mantissa <= (UInt64.max - 9) / 10 {
                mantissa = mantissa &* 10 &+ UInt64(c &- zero)
            } else {
                exact = false
            }
        }

        guard i < end else { throw unexpected(at: i) }
        var c = base[i]
        if c == zero {
            i &+= 1
            if i < end, isDigit(base[i]) { throw leadingZero(at: i &- 1) }
        } else if c > zero && c <= nine {
            repeat {
                if exact { accumulate(c) } else { exponent &+= 1 }
                i &+= 1
                guard i < end else { break }
                c = base[i]
            } while isDigit(c)
        } else {
            throw unexpected(at: i)
        }

        var isInteger = true
        if i < end, base[i] == dot {
            isInteger = false
            i &+= 1
            guard i < end, isDigit(base[i]) else { throw unexpected(at: i) }
            repeat {
                if exact {
                    accumulate(base[i])
                    if exact { exponent &-= 1 }
                }
                i &+= 1
            } while i < end && isDigit(base[i])
        }
        if i < end, base[i] | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            i &+= 1
            var expNegative = false
            if i < end, base[i] == minus || base[i] == plus {
                expNegative = base[i] == minus
                i &+= 1
            }
            guard i < end, isDigit(base[i]) else { throw unexpected(at: i) }
            var e = 0
            repeat {
                // Saturate: anything this large over/underflows anyway.
                if e < 1_000_000 { e = e &* 10 &+ Int(base[i] &- zero) }
                i &+= 1
            } while i < end && isDigit(base[i])
            exponent &+= expNegative ? -e : e
        }
        pos = i

        if isInteger && exact {
            if !negative {
                if mantissa <= UInt64(Int64.max) { return .int(Int64(mantissa)) }
            } else if mantissa <= UInt64(Int64.max) &+ 1 {
                return .int(Int64(truncatingIfNeeded: 0 &- mantissa))
            }
        }
        // Exact fast path (Clinger): mantissa and 10^|e| are exact doubles, so one
        // correctly rounded multiply or divide gives the correctly rounded result.
        if exact && mantissa <= 1 << 53 {
            if mantissa == 0 { return .double(negative ? -0.0 : 0.0) }
            if exponent >= -22 && exponent <= 22 {
                var d = Double(mantissa)
                d = exponent >= 0 ? d * exactPowersOfTen[exponent] : d / exactPowersOfTen[-exponent]
                return .double(negative ? -d : d)
            }
        }
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: i &- start), as: UTF8.self)
        guard let d = Double(text), d.isFinite else { throw outOfRange(at: start) }
        return .double(d)
    }

    @inline(__always)
    func isDigit(_ c: UInt8) -> Bool { c &- zero < 10 }

    // MARK: - Errors (cold)

    @inline(never)
    func unexpected(at i: Int) -> JSONParseError {
        guard i < end else { return JSONParseError(message: "unexpected end of input at offset \(i)", offset: i) }
        let c = base[i]
        if c >= 0x20 && c < 0x7F {
            return JSONParseError(message: "unexpected character '\(Character(Unicode.Scalar(c)))' at offset \(i)", offset: i)
        }
        if c >= 0x80 {
            let length = validUTF8SequenceLength(at: i, limit: end)
            guard length > 0 else { return JSONParseError(message: "invalid UTF-8 at offset \(i)", offset: i) }
            let text = String(decoding: UnsafeBufferPointer(start: base + i, count: length), as: UTF8.self)
            return JSONParseError(message: "unexpected character '\(text)' at offset \(i)", offset: i)
        }
        return JSONParseError(message: "unexpected byte \(hexByte(c)) at offset \(i)", offset: i)
    }

    @inline(never)
    func unterminated(at open: Int) -> JSONParseError {
        JSONParseError(message: "unterminated string at offset \(open)", offset: open)
    }

    @inline(never)
    func controlCharacter(at i: Int) -> JSONParseError {
        JSONParseError(message: "unescaped control character \(hexByte(base[i])) in string at offset \(i)", offset: i)
    }

    @inline(never)
    func invalidEscape(at i: Int) -> JSONParseError {
        let c = base[i &+ 1]
        let shown = c >= 0x20 && c < 0x7F ? "'\\\(Character(Unicode.Scalar(c)))'" : "\\ followed by \(hexByte(c))"
        return JSONParseError(message: "invalid escape \(shown) at offset \(i)", offset: i)
    }

    @inline(never)
    func invalidUnicodeEscape(at i: Int) -> JSONParseError {
        JSONParseError(message: "invalid \\u escape at offset \(i)", offset: i)
    }

    @inline(never)
    func loneSurrogate(_ unit: UInt32, at i: Int) -> JSONParseError {
        let hex = String(unit, radix: 16, uppercase: true)
        return JSONParseError(message: "lone surrogate \\u\(hex) at offset \(i)", offset: i)
    }

    @inline(never)
    func leadingZero(at i: Int) -> JSONParseError {
        JSONParseError(message: "leading zero in number at offset \(i)", offset: i)
    }

    @inline(never)
    func outOfRange(at i: Int) -> JSONParseError {
        JSONParseError(message: "number out of range at offset \(i)", offset: i)
    }

    @inline(never)
    func tooDeep(at i: Int) -> JSONParseError {
        JSONParseError(message: "nesting too deep (more than \(maxDepth) levels) at offset \(i)", offset: i)
    }

    @inline(never)
    func invalidUTF8(at i: Int) -> JSONParseError {
        JSONParseError(message: "invalid UTF-8 at offset \(i)", offset: i)
    }

    /// The offset of the first ill-formed UTF-8 sequence in `[from, to)`, or nil.
    func firstInvalidUTF8(from: Int, to: Int) -> Int? {
        var i = from
        while i < to {
            // Skip ASCII 8 bytes at a time.
            if i &+ 8 <= to,
               UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                i &+= 8
                continue
            }
            let length = validUTF8SequenceLength(at: i, limit: to)
            if length == 0 { return i }
            i &+= length
        }
        return nil
    }

    /// The length of the well-formed UTF-8 sequence at `i` (Unicode table 3-7), or 0.
    func validUTF8SequenceLength(at i: Int, limit: Int) -> Int {
        let b0 = base[i]
        if b0 < 0x80 { return 1 }
        let length: Int
        var lo: UInt8 = 0x80
        var hi: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; hi = 0x9F
        case 0xF0: length = 4; lo = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; hi = 0x8F
        default: return 0
        }
        guard i &+ length <= limit else { return 0 }
        let b1 = base[i &+ 1]
        guard b1 >= lo && b1 <= hi else { return 0 }
        for k in 2..<length where base[i &+ k] & 0xC0 != 0x80 { return 0 }
        return length
    }

    func hexByte(_ c: UInt8) -> String {
        let digits = String(c, radix: 16, uppercase: true)
        return c < 0x10 ? "0x0" + digits : "0x" + digits
    }
}

/// A growable stack in manually managed memory, so that elements can be *moved* out in bulk
/// (an Array can only copy them out, which costs a retain and a release each).
internal struct MoveStack<Element> {
    var base: UnsafeMutablePointer<Element>?
    var count = 0
    var capacity: Int
    /// Whether `base` is heap memory this stack allocated (vs. caller-provided storage).
    var ownsStorage = false

    /// A stack that starts in `initialStorage` (typically stack memory from
    /// `withUnsafeTemporaryAllocation`) and moves to the heap if it outgrows it.
    init(initialStorage: UnsafeMutableBufferPointer<Element>) {
        base = initialStorage.baseAddress
        capacity = initialStorage.count
    }

    @inline(__always)
    mutating func push(_ element: consuming Element) {
        if count == capacity { grow() }
        (base.unsafelyUnwrapped + count).initialize(to: element)
        count &+= 1
    }

    /// Moves `element` onto the stack, leaving `placeholder` (a trivial value) behind: unlike
    /// `push(element)`, no retain/release. (`consume` on the caller's reused variable would
    /// say the same, but was miscompiled in debug builds.)
    @inline(__always)
    mutating func pushMovingOut(_ element: inout Element, leaving placeholder: Element) {
        if count == capacity { grow() }
        let target = base.unsafelyUnwrapped + count
        withUnsafeMutablePointer(to: &element) { source in
            // move() + initialize, not moveInitialize(from:count:1): the latter copies a whole
            // stride, which over-reads a local whose size is smaller than its stride.
            target.initialize(to: source.move())
            source.initialize(to: placeholder)
        }
        count &+= 1
    }

    @inline(__always)
    var top: Element { base.unsafelyUnwrapped[count &- 1] }

    /// Removes the top element (only used for trivial elements, so nothing to release).
    @inline(__always)
    mutating func drop() {
        count &-= 1
        (base.unsafelyUnwrapped + count).deinitialize(count: 1)
    }

    /// Moves the elements from `start` to the top into an exactly sized array.
    @inline(__always)
    mutating func popArray(from start: Int) -> [Element] {
        let n = count &- start
        let source = base.unsafelyUnwrapped + start
        // See popObject: reserve + append stays on specialized code.
        var array: [Element] = []
        array.reserveCapacity(n)
        for i in 0..<n { array.append((source + i).move()) }
        count = start
        return array
    }

    @inline(never)
    mutating func grow() {
        let newCapacity = Swift.max(16, capacity &* 2)
        let newBase = UnsafeMutablePointer<Element>.allocate(capacity: newCapacity)
        if let base {
            newBase.moveInitialize(from: base, count: count)
            if ownsStorage { base.deallocate() }
        }
        base = newBase
        capacity = newCapacity
        ownsStorage = true
    }

    mutating func release() {
        guard let base else { return }
        base.deinitialize(count: count)
        if ownsStorage { base.deallocate() }
        self.base = nil
        count = 0
        capacity = 0
        ownsStorage = false
    }
}

@inline(__always)
private func memcmpBytes(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    var k = 0
    while k < n {
        if a[k] != b[k] { return false }
        k &+= 1
    }
    return true
}
