import Logging
import LuaRuntime

/// `log`: `debug`, `info`, `warn` and `error(message [, fields])`, logged by the server with
/// the calling file and line, and `fields` (a table) as structured metadata.
public enum LogModule {
    public static let module = LuaModule(
        name: "log", summary: "Structured log lines, with the calling file and line.",
        functions: [("debug", Logger.Level.debug), ("info", .info), ("warn", .warning), ("error", .error)].map { name, level in
            LuaFunction(name, "Logs `message` at level \(name), with `fields` as structured metadata.",
                        parameters: ["message any", "fields? table<string, any>"]) { arguments in
                arguments.log(level, message(&arguments), fields: 2)
                return .results(0)
            }
        })

    /// A string as it is; nil as `nil`; any other value as JSON when it converts (numbers,
    /// booleans, tables), else its type.
    private static func message(_ arguments: inout LuaArguments) -> String {
        if let text = arguments.string(1) { return text }
        if arguments.isNil(1) { return "nil" }
        return (try? arguments.json(1))?.serializedString() ?? arguments.typeName(1)
    }
}
