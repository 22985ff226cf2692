import MoonbaseJSON

/// A collection as the API shows it.
public struct CollectionInfo: Sendable, Equatable {
    /// Matches `^[a-z][a-z0-9_]{0,62}$`.
    public let name: String
    /// When it was created, ISO-8601 UTC with milliseconds.
    public let created: String

    public init(name: String, created: String) {
        self.name = name
        self.created = created
    }

    /// `{"name":…,"created":…}`
    public var json: JSONObject {
        JSONObject([("name", .string(name)), ("created", .string(created))])
    }

    /// That same JSON, written directly.
    public func write(into buffer: inout [UInt8]) {
        buffer.append(contentsOf: #"{"name":"#.utf8)
        JSONWriter.writeString(name, into: &buffer)
        buffer.append(contentsOf: #","created":"#.utf8)
        JSONWriter.writeString(created, into: &buffer)
        buffer.append(UInt8(ascii: "}"))
    }

    /// Whether `name` matches `^[a-z][a-z0-9_]{0,62}$`.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = name.utf8
        guard (1...63).contains(bytes.count), let first = bytes.first, (0x61...0x7A).contains(first) else {
            return false
        }
        return bytes.allSatisfy { byte in
            (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) || byte == UInt8(ascii: "_")
        }
    }
}
