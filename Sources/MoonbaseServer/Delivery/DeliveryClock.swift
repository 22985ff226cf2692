import Foundation

/// The time the delivery scheduler sees: the wall clock in production, a hand-driven one in tests
/// (so retry schedules of minutes can be checked in milliseconds).
public protocol DeliveryClock: Sendable {
    /// Milliseconds since 1970.
    func now() -> Int64
    /// Returns at `deadline` (milliseconds since 1970), or throws when the task is cancelled.
    func sleep(until deadline: Int64) async throws
}

/// The system's wall clock.
public struct SystemDeliveryClock: DeliveryClock {
    public init() {}

    public func now() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }

    public func sleep(until deadline: Int64) async throws {
        let wait = deadline - now()
        if wait > 0 { try await Task.sleep(for: .milliseconds(wait)) }
    }
}
