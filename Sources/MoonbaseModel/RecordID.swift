/// Record ids: 15 characters of `[a-z0-9]`, random, like PocketBase's.
///
/// 36^15 ≈ 2^77 possible ids, so collisions are not a practical concern; the primary key still
/// refuses one if it ever happens.
public enum RecordID {
    /// The length of every generated id.
    public static let length = 15

    private static let alphabet: [UInt8] = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// A fresh random id from the system's cryptographic generator.
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(unsafeUninitializedCapacity: length) { out in
            var filled = 0
            // One 64-bit draw gives 8 bytes; bytes ≥ 252 (= 7 × 36) are skipped so that `% 36`
            // stays uniform. Two draws almost always suffice, and each draw is a syscall on Linux.
            while filled < length {
                var bits = generator.next()
                for _ in 0..<8 where filled < length {
                    let byte = UInt8(truncatingIfNeeded: bits)
                    bits >>= 8
                    if byte < 252 {
                        out[filled] = alphabet[Int(byte % 36)]
                        filled += 1
                    }
                }
            }
            return length
        }
    }
}
