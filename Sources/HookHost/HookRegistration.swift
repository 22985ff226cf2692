/// Whether a handler runs before the write (and may change or refuse it) or after it.
public enum HookPhase: String, Sendable {
    case before
    case after
}

/// One registered handler, as the listing shows it.
public struct HookHandler: Sendable, Equatable {
    /// `options.name`, else the global function name bound to it, else `anonymous@file.lua:LINE`.
    public var name: String
    public var phase: HookPhase
    /// The event type it handles; nil for `on_any_event`.
    public var event: RecordEventType?
    /// The collections it handles; nil for all.
    public var collections: [String]?
    /// The line where the handler function is defined.
    public var line: Int
    /// After-hooks only: whether the response waits for it (`options.async = false`).
    public var async: Bool
    /// The file that registered it (`hooks/notify.lua`).
    public var file: String

    func matches(_ phase: HookPhase, _ type: RecordEventType, _ collection: String) -> Bool {
        self.phase == phase && (event == nil || event == type) && (collections?.contains(collection) ?? true)
    }

    /// How the listing names the event: `record.created`, `before.record.created`, `*` for any.
    public var eventLabel: String {
        let base = event?.rawValue ?? "*"
        return phase == .before ? "before:" + base : base
    }

    /// How the listing names the collections: one name, a comma list, or `*`.
    public var collectionLabel: String {
        collections?.joined(separator: ",") ?? "*"
    }
}

/// The registration functions of SPEC section 3.
enum RegistrationFunction: String, CaseIterable {
    case onRecordCreate = "on_record_create"
    case onRecordUpdate = "on_record_update"
    case onRecordDelete = "on_record_delete"
    case onAnyEvent = "on_any_event"
    case beforeRecordCreate = "before_record_create"
    case beforeRecordUpdate = "before_record_update"
    case beforeRecordDelete = "before_record_delete"

    var phase: HookPhase {
        switch self {
        case .beforeRecordCreate, .beforeRecordUpdate, .beforeRecordDelete: .before
        default: .after
        }
    }

    var event: RecordEventType? {
        switch self {
        case .onRecordCreate, .beforeRecordCreate: .created
        case .onRecordUpdate, .beforeRecordUpdate: .updated
        case .onRecordDelete, .beforeRecordDelete: .deleted
        case .onAnyEvent: nil
        }
    }

    /// `on_any_event(handler [, options])` takes no collection.
    var takesCollection: Bool { self != .onAnyEvent }

    var allowedOptions: Set<String> { phase == .before ? ["name"] : ["name", "async"] }
}
