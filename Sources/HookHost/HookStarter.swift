/// The commented starter file `moonbase hooks new` writes: one handler on one event, named, with
/// the command that tries it. It loads and passes `moonbase hooks test` as written.
public struct HookStarter: Sendable {
    /// What the starter handles: an after-event or a before-event.
    public enum Kind: String, Sendable, CaseIterable {
        case created, updated, deleted
        case beforeCreate = "before-create", beforeUpdate = "before-update", beforeDelete = "before-delete"

        var registration: RegistrationFunction {
            switch self {
            case .created: .onRecordCreate
            case .updated: .onRecordUpdate
            case .deleted: .onRecordDelete
            case .beforeCreate: .beforeRecordCreate
            case .beforeUpdate: .beforeRecordUpdate
            case .beforeDelete: .beforeRecordDelete
            }
        }

        /// The `hooks test --event` that triggers it.
        public var testEvent: String {
            switch self {
            case .created, .beforeCreate: "created"
            case .updated, .beforeUpdate: "updated"
            case .deleted, .beforeDelete: "deleted"
            }
        }
    }

    public var name: String
    public var collection: String
    public var kind: Kind

    public init(name: String, collection: String, kind: Kind) {
        self.name = name
        self.collection = collection
        self.kind = kind
    }

    /// Why `name` cannot name a hook file, or nil: letters, digits, `_` and `-`, not starting
    /// with `_` (a module) or `-`.
    public static func problem(withName name: String) -> String? {
        guard let first = name.first, first != "_", first != "-" else {
            return "a hook file's name starts with a letter or a digit (names starting with _ are modules)"
        }
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            return "a hook file's name holds only letters, digits, _ and -"
        }
        return nil
    }

    /// The file's text.
    public var source: String {
        let function = kind.registration
        let when = function.phase == .before ? "before" : "after"
        let what = kind.testEvent == "created" ? "created" : kind.testEvent == "updated" ? "updated" : "deleted"
        let body: String
        let options: String
        switch kind {
        case .created, .updated, .deleted:
            body = """
                -- After-hooks run once the write has committed, in the background; an error here is
                -- logged (and retried, see retries below), and never affects the request.
                ---@param event RecordEvent
                local function handle(event)
                  -- event.data is the record as stored (for a delete, as it was); event.old_data the record
                  -- before an update or delete. event.id is the same on every retry: an idempotency key.
                  log.info("\(name): record \(what)", {collection = event.collection_name, id = event.record_id})
                end
                """
            options = """
                {
                  name = "\(name)",  -- names it in the listing; its pending deliveries survive edits of this file
                  retries = 3,       -- a failing delivery is tried again, up to 3 times
                }
                """
        case .beforeCreate, .beforeUpdate:
            body = """
                -- Before-hooks run before the write, and may change or refuse it: change event.data (or
                -- return a new table) to change what is stored; reject(message, status) to refuse it.
                ---@param event RecordEvent
                local function check(event)
                  local title = event.data.title
                  if type(title) == "string" and #title > 200 then
                    reject("title is too long (200 characters at most)", 422)
                  end
                end
                """
            options = "{name = \"\(name)\"}"
        case .beforeDelete:
            body = """
                -- Before-hooks run before the write and may refuse it with reject(message, status).
                ---@param event RecordEvent
                local function check(event)
                  if event.data.locked == true then
                    reject("this record is locked", 409)
                  end
                end
                """
            options = "{name = \"\(name)\"}"
        }
        let handler = function.phase == .before ? "check" : "handle"
        return """
            -- \(name): runs \(when) a record of "\(collection)" is \(what).
            -- Try it:   moonbase hooks test hooks/\(name).lua --event \(kind.testEvent) --collection \(collection) --data '{"title":"Hello"}'
            -- The API:  run `moonbase hooks types` for editor completion, or see the README's guide.

            \(body)

            \(function.rawValue)("\(collection)", \(handler), \(options))

            """
    }
}
