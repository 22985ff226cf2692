import LuaRuntime
import MoonbaseJSON

/// `json`: `encode`, `decode`, `null` (JSON's null, distinct from a missing field) and
/// `array(t)` (marks a table as an array, so that an empty one is written as `[]`).
///
/// The conversion itself is the runtime's value bridge (`LuaArguments.json`, `push`), the one
/// every host function uses, so a value reads the same here as in an event or a response.
public enum JSONModule {
    public static let module = LuaModule(
        name: "json", summary: "JSON text to Lua values and back.",
        functions: [
            LuaFunction("encode", "JSON text of a value: a table with only 1…n keys is an array, one with string keys an object.",
                        parameters: ["value any"], returns: ["string"]) { arguments in
                do throws(LuaConversionError) {
                    arguments.push(try arguments.json(1).serializedString())
                    return .results(1)
                } catch {
                    return .error("json.encode: \(error.message)")
                }
            },
            LuaFunction("decode", "The value of a JSON text (objects and arrays become tables, null becomes json.null); raises on malformed text.",
                        parameters: ["text string"], returns: ["any"]) { arguments in
                guard let text = arguments.string(1) else {
                    return arguments.badArgument(1, to: "json.decode", expected: "string")
                }
                do throws(JSONParseError) {
                    arguments.push(try JSONValue.parse(text))
                    return .results(1)
                } catch {
                    return .error("json.decode: \(error.message)")
                }
            },
            LuaFunction("array", "Marks `t` (or a new table) as a JSON array, so that an empty one is written as [].",
                        parameters: ["t? table"], returns: ["table"]) { arguments in arguments.markArray(1) },
        ],
        constants: [(name: "null", value: .null, type: "lightuserdata")])
}
