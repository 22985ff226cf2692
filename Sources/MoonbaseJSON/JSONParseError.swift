/// Why a JSON document was rejected, and where.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A human-readable message that ends with the offset, e.g.
    /// "unexpected character '}' at offset 12" or "unterminated string at offset 3".
    public let message: String
    /// Byte offset into the input where the problem was found.
    public let offset: Int

    /// An error with `message` and `offset`; `message` should already mention the offset.
    public init(message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    /// The message (it already contains the offset).
    public var description: String { message }
}
