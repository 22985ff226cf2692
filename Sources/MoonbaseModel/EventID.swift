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
}
