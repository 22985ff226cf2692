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

/// A write the before-hooks refused: `reject(message, status)`, or a hook that failed (500
/// "hook failed", with the details in `detail`, which clients never see).
public struct WriteRefusal: Error, Sendable {
    public var status: Int
    public var message: String
    public var detail: String?

    public init(status: Int, message: String, detail: String? = nil) {
        self.status = status
        self.message = message
        self.detail = detail
    }
}
