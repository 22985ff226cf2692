import Synchronization

/// Event ids: a random prefix chosen at start-up and a counter, so making one costs an atomic
/// increment rather than 15 random draws, and ids of one run sort in the order events happened.
public enum EventID {
    private static let prefix: String = {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz")
        return String((0..<8).map { _ in alphabet.randomElement()! })
    }()
    private static let counter = Atomic<UInt64>(0)

    /// A fresh id, `evt_` then 16 characters of `[0-9a-z]`.
    public static func make() -> String {
        format(prefix: prefix, counter: Int64(counter.add(1, ordering: .relaxed).newValue))
    }

    /// The id of `counter` under `prefix`: `evt_`, the prefix, the counter in base 36 (8 digits at least).
    public static func format(prefix: String, counter: Int64) -> String {
        let digits = String(counter, radix: 36)
        return "evt_" + prefix + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// The prefix and counter of an id exactly as `format` writes it (`evt_` + 8 characters +
    /// the base-36 counter, at least 8 digits), else nil.
    public static func parts(_ id: String) -> (prefix: String, counter: Int64)? {
        guard id.utf8.count >= 20, id.hasPrefix("evt_") else { return nil }
        let prefix = String(id.dropFirst(4).prefix(8))
        guard prefix.utf8.allSatisfy(isBase36Digit), let counter = Int64(id.dropFirst(12), radix: 36),
              format(prefix: prefix, counter: counter) == id else { return nil }
        return (prefix, counter)
    }

    private static func isBase36Digit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
    }
}
