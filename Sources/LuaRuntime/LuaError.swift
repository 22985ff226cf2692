import MoonbaseJSON

/// An error raised by Lua code or by the host while running it. `message` carries the
/// `file:line:` prefix Lua gives it; `traceback` the stack where it happened.
public struct LuaError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The chunk did not compile.
        case syntax
        /// A runtime error raised by the script or a host function.
        case runtime
        /// The memory cap of the state was reached.
        case memory
        /// The instruction or wall-clock budget of the call ran out; the call was abandoned.
        case budget
        /// The handler yielded to the host without a reason the host knows.
        case yield
    }

    public var kind: Kind
    public var message: String
    public var traceback: String?
    /// A table raised as the error object, converted to JSON (for structured errors such as refusals).
    public var value: JSONValue?

    public init(kind: Kind, message: String, traceback: String? = nil, value: JSONValue? = nil) {
        self.kind = kind
        self.message = message
        self.traceback = traceback
        self.value = value
    }

    public var description: String { message }
}

/// A Lua value that cannot be represented as JSON (a function, a cycle, a sparse array, …).
public struct LuaConversionError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
