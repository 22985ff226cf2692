import Logging
import LuaRuntime
import MoonbaseJSON

extension FuzzChecks {
    /// JSON to a Lua table and back is the identity: every value a document can hold comes back
    /// from Lua as it went in (integers as integers, `[]` as an array, `null` as null, key order
    /// kept by the order hint), on a state with the default budgets.
    public static func luaBridge(_ bytes: [UInt8], state: LuaState) -> String? {
        guard let value = try? JSONValue.parse(bytes) else { return nil }
        let top = state.top
        defer { state.setTop(top) }
        let index = state.push(value)
        do throws(LuaConversionError) {
            let back = try state.json(at: index, orderHint: value)
            guard back == value, back.serializedString() == value.serializedString() else {
                return "through Lua \(value.serializedString()) came back as \(back.serializedString())"
            }
            return nil
        } catch {
            return "through Lua \(value.serializedString()) could not be read back: \(error.message)"
        }
    }

    /// A state for `luaBridge`, made once per fuzzing process.
    public static func makeBridgeState() -> LuaState {
        try! LuaState(logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
    }
}
