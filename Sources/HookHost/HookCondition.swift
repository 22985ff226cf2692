import MoonbaseJSON
import MoonbaseModel

/// The `when` and `changed` options of a record handler (SPEC section 14): which writes it
/// wants, decided in Swift from the write's data before any Lua runs, so a write no handler
/// wants builds no event table and stores no event.
public struct HookCondition: Sendable, Equatable {
    /// Field → value: every field of `data` must equal its value (as JSON values: `1` equals
    /// `1.0`, objects regardless of key order); a `null` value asks for the field to be missing
    /// or null.
    public var when: JSONObject?
    /// At least one of these fields must differ between `old_data` and `data` (a missing field
    /// and a null one count as the same). Updates only.
    public var changed: [String]?

    /// Whether a write with `data` (and, for an update or delete, `oldData`) is wanted.
    public func admits(data: JSONObject, oldData: JSONObject?) -> Bool {
        if let when {
            for (field, expected) in when where !Self.same(data[field], expected) { return false }
        }
        if let changed {
            guard let oldData else { return false }
            return changed.contains { !Self.same(data[$0], oldData[$0] ?? .null) }
        }
        return true
    }

    /// The listing's fields: `when` and `changed` where set.
    func listed(into entry: inout JSONObject) {
        if let when { entry["when"] = .object(when) }
        if let changed { entry["changed"] = .array(changed.map { .string($0) }) }
    }

    /// A field's value against the expected one; a missing field is null.
    private static func same(_ value: JSONValue?, _ expected: JSONValue) -> Bool {
        equal(value ?? .null, expected)
    }

    /// JSON equality: numbers by value whatever their kind, objects whatever their key order.
    static func equal(_ lhs: JSONValue, _ rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.int(let a), .double(let b)), (.double(let b), .int(let a)): return Double(a) == b
        case (.array(let a), .array(let b)): return a.count == b.count && zip(a, b).allSatisfy { equal($0, $1) }
        case (.object(let a), .object(let b)):
            return a.count == b.count && a.allSatisfy { key, value in b[key].map { equal(value, $0) } ?? false }
        default: return lhs == rhs
        }
    }

    /// Reads `when` and `changed` from a registration's options; nil when neither is given.
    static func parse(_ options: JSONObject, for function: RegistrationFunction) -> Result<HookCondition?, RegistrationError> {
        var condition = HookCondition()
        if let value = options["when"] {
            guard case .object(let fields) = value, !fields.isEmpty else {
                return .failure(RegistrationError(message:
                    "option 'when' must be a table of field = value with at least one field (json.null for a missing field)"))
            }
            if fields["updated"] != nil {
                return .failure(RegistrationError(message: "option 'when' cannot test 'updated': it changes on every write"))
            }
            condition.when = fields
        }
        if let value = options["changed"] {
            guard function.event == .updated else {
                return .failure(RegistrationError(message:
                    "option 'changed' applies to updates only (use on_record_update or before_record_update)"))
            }
            let items: [JSONValue] = switch value {
            case .string: [value]
            case .array(let items): items
            default: []
            }
            let names = items.compactMap { item -> String? in
                if case .string(let name) = item, !name.isEmpty { return name }
                return nil
            }
            guard !names.isEmpty, names.count == items.count else {
                return .failure(RegistrationError(message: "option 'changed' must be a field name or a non-empty list of field names"))
            }
            if let system = names.first(where: Record.isSystemField) {
                return .failure(RegistrationError(message:
                    "option 'changed' cannot name '\(system)': a system field (id, collection and created never change, updated always does)"))
            }
            condition.changed = names
        }
        return .success(condition.when == nil && condition.changed == nil ? nil : condition)
    }
}
