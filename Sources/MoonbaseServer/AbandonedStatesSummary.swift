import Foundation
import HookHost
import Hummingbird

/// The Lua states the hook pool's watchdog gave up (each still holds its memory until the
/// process ends), as the `Moonbase-Abandoned-States` header of `GET /api/v1/hooks` shows them:
/// `2; bytes=33816576`. A header, because the listing is a JSON array that scripts read as it is.
public struct AbandonedStatesSummary: Sendable, Equatable {
    public static let headerName = "Moonbase-Abandoned-States"
    /// The header's name as HTTPFields take it (`HTTPFields.Element` is HTTPField, a type
    /// Hummingbird does not re-export).
    public static let field = HTTPFields.Element.Name(headerName)!

    public var count: Int
    /// What the abandoned states hold now, together.
    public var bytes: Int

    public init(_ states: [AbandonedState]) {
        count = states.count
        bytes = states.reduce(0) { $0 + $1.memoryBytes }
    }

    /// Reads a header value; nil if it is not one.
    public init?(headerValue: String) {
        let parts = headerValue.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let count = Int(parts[0]), parts[1].hasPrefix("bytes="), let bytes = Int(parts[1].dropFirst(6)) else {
            return nil
        }
        self.count = count
        self.bytes = bytes
    }

    public var headerValue: String { "\(count); bytes=\(bytes)" }
}
