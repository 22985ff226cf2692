import Foundation
import MoonbaseJSON

/// The properties the fuzz targets check on one input, each returning nil when it holds and a
/// description of the failure otherwise. Shared by the libFuzzer targets (`Fuzz/`) and by the
/// tests that replay the committed corpus and every crash found, so both check the same thing.
public enum FuzzChecks {
    /// Moonbase's parser against Foundation's `JSONSerialization`: they accept and reject the same
    /// documents and read the same values from them, and what Moonbase writes back parses to the
    /// same value. Inputs on which Foundation is knowingly lenient where RFC 8259 (and Moonbase)
    /// is strict are checked against Moonbase alone (see `foundationIsLenient`).
    public static func parser(_ bytes: [UInt8]) -> String? {
        let ours = Result { () throws(JSONParseError) in try JSONValue.parse(bytes) }
        if case .success(let value) = ours {
            let written = value.serialized()
            guard let again = try? JSONValue.parse(written), again == value else {
                return "what the writer wrote does not parse back to the same value: \(String(decoding: written, as: UTF8.self))"
            }
        }
        if foundationIsLenient(bytes) { return nil }
        let theirs = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        switch (ours, theirs) {
        case (.failure, nil):
            return nil
        case (.success(let value), nil):
            return "Moonbase accepts what Foundation rejects: \(value.serializedString())"
        case (.failure(let error), let theirs?):
            return "Moonbase rejects what Foundation accepts (\(theirs)): \(error.message)"
        case (.success(let value), let theirs?):
            return difference(value, theirs, at: "$").map { "the values differ at \($0)" }
        }
    }

    /// Where `a` (Moonbase's) and `b` (Foundation's) first differ as JSON values (a path and
    /// both values), or nil. Numbers compare by value: where Foundation keeps a number less
    /// exactly than Moonbase (an integer as a double or a decimal, one past Int64 as UInt64 where
    /// Moonbase has a double), they agree to the less exact one's precision.
    static func difference(_ a: JSONValue, _ b: Any, at path: String) -> String? {
        let differ = "\(path): Moonbase \(a.serializedString()), Foundation \(b)"
        switch a {
        case .null: return b is NSNull ? nil : differ
        case .bool(let flag):
            guard let number = b as? NSNumber, isBool(number), number.boolValue == flag else { return differ }
        case .int(let integer):
            guard let number = b as? NSNumber, !isBool(number) else { return differ }
            // Foundation may keep an integer that fits Int64 as a double, losing digits (a
            // decimal keeps them: its `int64Value` is exact, its `doubleValue` may be off by one ulp).
            let exact = String(cString: number.objCType) != "d" || number is NSDecimalNumber
            if exact ? number.int64Value != integer : number.doubleValue != Double(integer) { return differ }
        case .double(let double):
            guard let number = b as? NSNumber, !isBool(number) else { return differ }
            // A decimal's `doubleValue` is computed digit by digit, off by more than an ulp for
            // long mantissas with large exponents; Moonbase's own conversion rounds correctly.
            let tolerance = number is NSDecimalNumber ? 1e-12 : 1e-15
            let theirs = number.doubleValue
            if theirs != double && abs(theirs - double) > abs(double) * tolerance { return differ }
        case .string(let string):
            guard let theirs = b as? String, Array(theirs.utf8) == Array(string.utf8) else { return differ }
        case .array(let items):
            guard let theirs = b as? [Any], theirs.count == items.count else { return differ }
            for (index, (item, other)) in zip(items, theirs).enumerated() {
                if let found = difference(item, other, at: "\(path)[\(index)]") { return found }
            }
        case .object(let object):
            guard let theirs = b as? [String: Any], theirs.count == object.count else { return differ }
            for (key, value) in object {
                guard let other = theirs[key] else { return differ }
                if let found = difference(value, other, at: "\(path).\(key)") { return found }
            }
        }
        return nil
    }

    private static func isBool(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }

    /// A leading byte-order mark, a `,` before a closing bracket outside strings, a NUL byte
    /// (Foundation reads up to it and ignores the rest): Foundation accepts these, RFC 8259 does
    /// not. And an exponent of five digits or more, which Foundation's parser lets overflow (it
    /// reads `7e203685722` as 2) where Moonbase refuses a number out of range.
    static func foundationIsLenient(_ bytes: [UInt8]) -> Bool {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) || bytes.contains(0) { return true }
        var inString = false, escaped = false, lastSignificant: UInt8 = 0, exponentDigits: Int?
        for byte in bytes {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            if let digits = exponentDigits {
                if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                    if digits + 1 >= 5 { return true }
                    exponentDigits = digits + 1
                    continue
                }
                if digits == 0 && (byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")) { continue }
                exponentDigits = nil
            }
            if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") { exponentDigits = 0 }
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): continue
            case UInt8(ascii: "]"), UInt8(ascii: "}"): if lastSignificant == UInt8(ascii: ",") { return true }
            case UInt8(ascii: "\""): inString = true
            default: break
            }
            lastSignificant = byte
        }
        return false
    }
}
