/// Byte-level JSON output into a `[UInt8]`.
///
/// Whole values are written into a raw byte sink (stack memory first, heap only for large
/// outputs) and appended to the caller's array in one copy: per-byte `Array.append` pays a
/// uniqueness and capacity check each time, which dominated an earlier version.
public enum JSONWriter {
    /// Appends `s` as a JSON string literal: quotes, `"` `\` and control characters escaped
    /// (`\n` `\r` `\t` `\b` `\f` short forms, others `\u00XX`); all other UTF-8, and `/`, as is.
    public static func writeString(_ s: String, into buffer: inout [UInt8]) {
        withUTF8Bytes(of: s) { bytes in
            if firstByteNeedingEscape(bytes, from: 0) == bytes.count {
                // Nothing to escape (the common case): three appends, no sink.
                buffer.reserveCapacity(buffer.count &+ bytes.count &+ 2)
                buffer.append(UInt8(ascii: "\""))
                buffer.append(contentsOf: bytes)
                buffer.append(UInt8(ascii: "\""))
            } else {
                ByteSink.appending(to: &buffer) { sink in sink.writeString(bytes) }
            }
        }
    }

    /// Appends the shortest representation that parses back to `d`.
    ///
    /// Non-finite values have no JSON form and become `null`. Integral values keep a `.0` (or an
    /// exponent) so they parse back as doubles, not integers.
    public static func writeDouble(_ d: Double, into buffer: inout [UInt8]) {
        ByteSink.appending(to: &buffer) { sink in sink.writeDouble(d) }
    }

    /// Appends the decimal digits of `i`, straight into `buffer`: for a few digits, a sink's
    /// stack buffer and the copy out of it cost more than the digits themselves.
    public static func writeInt(_ i: Int64, into buffer: inout [UInt8]) {
        if i < 0 { buffer.append(UInt8(ascii: "-")) }
        var magnitude = i.magnitude // handles Int64.min without overflow
        let start = buffer.count
        repeat {
            let (q, r) = magnitude.quotientAndRemainder(dividingBy: 10)
            buffer.append(UInt8(truncatingIfNeeded: r) &+ UInt8(ascii: "0"))
            magnitude = q
        } while magnitude != 0
        buffer[start...].reverse()
    }

    // MARK: - Internals

    /// The index of the first byte at or after `start` that must be escaped (`"`, `\`, or a
    /// control character), or `bytes.count`. Scans 8 bytes at a time.
    @inline(__always)
    internal static func firstByteNeedingEscape(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        let n = bytes.count
        guard n > 0, let base = bytes.baseAddress else { return 0 }
        var i = start
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while i &+ 8 <= n {
            let w = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
            let q = w ^ (ones &* 0x22)
            let b = w ^ (ones &* 0x5C)
            let hits = (((q &- ones) & ~q) | ((b &- ones) & ~b) | ((w &- ones &* 0x20) & ~w)) & highs
            if hits != 0 { return i &+ (hits.trailingZeroBitCount &>> 3) }
            i &+= 8
        }
        while i < n {
            let c = base[i]
            if c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") { return i }
            i &+= 1
        }
        return n
    }
}

/// A growable output buffer in raw memory. Writes are unchecked after a `reserve`.
internal struct ByteSink {
    var base: UnsafeMutablePointer<UInt8>
    var count = 0
    var capacity: Int
    /// Whether `base` is heap memory this sink allocated (vs. caller-provided storage).
    var ownsStorage = false

    init(initialStorage: UnsafeMutableBufferPointer<UInt8>) {
        base = initialStorage.baseAddress.unsafelyUnwrapped
        capacity = initialStorage.count
    }

    /// Runs `body` with a sink that starts in stack memory and appends its output to `buffer`.
    @inline(__always)
    static func appending(to buffer: inout [UInt8], _ body: (inout ByteSink) -> Void) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 2048) { storage in
            var sink = ByteSink(initialStorage: storage)
            body(&sink)
            buffer.append(contentsOf: UnsafeBufferPointer(start: sink.base, count: sink.count))
            sink.release()
        }
    }

    /// Runs `body` with a sink that starts in stack memory and returns its output.
    @inline(__always)
    static func bytes(_ body: (inout ByteSink) -> Void) -> [UInt8] {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 2048) { storage in
            var sink = ByteSink(initialStorage: storage)
            body(&sink)
            let result = [UInt8](UnsafeBufferPointer(start: sink.base, count: sink.count))
            sink.release()
            return result
        }
    }

    mutating func release() {
        if ownsStorage { base.deallocate() }
        ownsStorage = false
        capacity = 0
        count = 0
    }

    @inline(__always)
    mutating func reserve(_ n: Int) {
        if capacity &- count < n { grow(n) }
    }

    @inline(never)
    mutating func grow(_ n: Int) {
        let newCapacity = Swift.max(capacity &* 2, count &+ n)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        if ownsStorage { base.deallocate() }
        base = newBase
        capacity = newCapacity
        ownsStorage = true
    }

    /// Appends one byte; `reserve` first.
    @inline(__always)
    mutating func put(_ byte: UInt8) {
        base[count] = byte
        count &+= 1
    }

    /// Appends bytes; `reserve` first.
    @inline(__always)
    mutating func put(_ bytes: UnsafePointer<UInt8>, count n: Int) {
        (base + count).update(from: bytes, count: n)
        count &+= n
    }

    @inline(__always)
    mutating func putASCII(_ text: StaticString) {
        let n = text.utf8CodeUnitCount
        reserve(n)
        put(text.utf8Start, count: n)
    }

    // MARK: Values

    mutating func writeValue(_ value: JSONValue) {
        switch value {
        case .null:
            putASCII("null")
        case .bool(let b):
            if b { putASCII("true") } else { putASCII("false") }
        case .int(let i):
            writeInt(i)
        case .double(let d):
            writeDouble(d)
        case .string(let s):
            withUTF8Bytes(of: s) { writeString($0) }
        case .array(let elements):
            reserve(2)
            put(UInt8(ascii: "["))
            var first = true
            for element in elements {
                if !first {
                    reserve(1)
                    put(UInt8(ascii: ","))
                }
                first = false
                writeValue(element)
            }
            reserve(1)
            put(UInt8(ascii: "]"))
        case .object(let object):
            writeObject(object)
        }
    }

    mutating func writeObject(_ object: JSONObject) {
        reserve(2)
        put(UInt8(ascii: "{"))
        var first = true
        for entry in object.entries {
            if !first {
                reserve(1)
                put(UInt8(ascii: ","))
            }
            first = false
            withUTF8Bytes(of: entry.key) { writeString($0) }
            reserve(1)
            put(UInt8(ascii: ":"))
            writeValue(entry.value)
        }
        reserve(1)
        put(UInt8(ascii: "}"))
    }

    /// A quoted, escaped string: unescaped runs are copied in bulk.
    @inline(__always)
    mutating func writeString(_ bytes: UnsafeBufferPointer<UInt8>) {
        let n = bytes.count
        reserve(n &+ 2)
        put(UInt8(ascii: "\""))
        var runStart = 0
        var i = JSONWriter.firstByteNeedingEscape(bytes, from: 0)
        while i < n {
            if i > runStart { put(bytes.baseAddress.unsafelyUnwrapped + runStart, count: i &- runStart) }
            writeEscape(bytes[i], remaining: n &- i)
            runStart = i &+ 1
            i = JSONWriter.firstByteNeedingEscape(bytes, from: runStart)
        }
        if n > runStart { put(bytes.baseAddress.unsafelyUnwrapped + runStart, count: n &- runStart) }
        put(UInt8(ascii: "\""))
    }

    /// Writes the escape for `c`, keeping room for the `remaining` bytes of the string and
    /// the closing quote (the string's reservation assumed one byte per input byte).
    @inline(never)
    mutating func writeEscape(_ c: UInt8, remaining: Int) {
        reserve(6 &+ remaining &+ 1)
        put(UInt8(ascii: "\\"))
        switch c {
        case UInt8(ascii: "\""): put(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): put(UInt8(ascii: "\\"))
        case 0x0A: put(UInt8(ascii: "n"))
        case 0x0D: put(UInt8(ascii: "r"))
        case 0x09: put(UInt8(ascii: "t"))
        case 0x08: put(UInt8(ascii: "b"))
        case 0x0C: put(UInt8(ascii: "f"))
        default:
            let hex: StaticString = "0123456789abcdef"
            put(UInt8(ascii: "u"))
            put(UInt8(ascii: "0"))
            put(UInt8(ascii: "0"))
            put(hex.utf8Start[Int(c &>> 4)])
            put(hex.utf8Start[Int(c & 0x0F)])
        }
    }

    mutating func writeInt(_ i: Int64) {
        reserve(20)
        if i < 0 { put(UInt8(ascii: "-")) }
        // magnitude handles Int64.min without overflow.
        var magnitude = i.magnitude
        var length = 1
        var limit: UInt64 = 10
        while length < 20 && magnitude >= limit {
            length &+= 1
            limit = limit &* 10
        }
        var at = count &+ length
        repeat {
            at &-= 1
            let (q, r) = magnitude.quotientAndRemainder(dividingBy: 10)
            base[at] = UInt8(truncatingIfNeeded: r) &+ UInt8(ascii: "0")
            magnitude = q
        } while magnitude != 0
        count &+= length
    }

    mutating func writeDouble(_ d: Double) {
        guard d.isFinite else {
            putASCII("null")
            return
        }
        // The standard library's description is the shortest round-trip form, always with a
        // digit before the point and exponents as "e-05"/"e+16": all valid JSON numbers.
        // Short outputs (most numbers) fit a small String and do not allocate.
        var text = d.description
        text.withUTF8 { bytes in
            reserve(bytes.count &+ 2)
            var integral = true
            for b in bytes where b == UInt8(ascii: ".") || b == UInt8(ascii: "e") {
                integral = false
                break
            }
            put(bytes.baseAddress.unsafelyUnwrapped, count: bytes.count)
            if integral {
                put(UInt8(ascii: "."))
                put(UInt8(ascii: "0"))
            }
        }
    }
}
