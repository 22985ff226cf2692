import MoonbaseJSON

/// What the before-hooks decided about a write.
public enum BeforeOutcome: Sendable, Equatable {
    /// Go ahead and store this data (possibly changed by the hooks).
    case proceed(JSONObject)
    /// A hook called `reject(message, status)`.
    case rejected(message: String, status: Int)
    /// A hook failed (error or budget): the write is refused, details are in the log only.
    case failed(String)
}
