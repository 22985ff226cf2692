import MoonbaseModel

/// Whether a handler runs before the write (and may change or refuse it), after it, when a
/// delivery to an after-handler has failed for good (`on_hook_failed`), answers HTTP
/// requests (`route`) or runs on a schedule (`cron`).
public enum HookPhase: String, Sendable {
    case before
    case after
    case failure
    case route
    case cron
}

/// Which deliveries of one after-handler run one at a time, in commit order.
public enum DeliveryOrder: String, Sendable, CaseIterable {
    /// Those of one record (the default): different records are handled concurrently.
    case record
    /// All those of one collection: for handlers that keep aggregates, such as counters.
    case collection
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
    /// After-hooks only: how often a failing delivery is tried again (`options.retries`).
    public var retries: Int
    /// After-hooks only: which of its deliveries wait for one another (`options.order`).
    public var order: DeliveryOrder = .record
    /// The file that registered it (`hooks/notify.lua`).
    public var file: String
    /// Record handlers only: `options.when` and `options.changed`, the writes it wants.
    public var condition: HookCondition?
    /// Routes only: the method and path it answers.
    public var route: HookRoute?
    /// Cron hooks only: when it runs, and whether a missed run is caught up.
    public var cron: HookCron?
    /// Names the handler across restarts, in the deliveries log: file, name, event and
    /// collections (made unique within the file by the loader).
    public internal(set) var key: String = ""

    /// How the listing names the event: `record.created`, `before:record.created`, `*` for any,
    /// `hook.failed` for `on_hook_failed`.
    public var eventLabel: String {
        switch phase {
        case .before: "before:" + (event?.rawValue ?? "*")
        case .after: event?.rawValue ?? "*"
        case .failure: "hook.failed"
        case .route: "route"
        case .cron: "cron"
        }
    }

    /// How the listing names the collections: one name, a comma list, or `*` (for a route: its
    /// method and path; for a cron hook: its schedule).
    public var collectionLabel: String {
        if let route { return route.method + " " + route.path }
        if let cron { return cron.schedule.text }
        return collections?.joined(separator: ",") ?? "*"
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
    case onHookFailed = "on_hook_failed"

    var phase: HookPhase {
        switch self {
        case .beforeRecordCreate, .beforeRecordUpdate, .beforeRecordDelete: .before
        case .onHookFailed: .failure
        default: .after
        }
    }

    var event: RecordEventType? {
        switch self {
        case .onRecordCreate, .beforeRecordCreate: .created
        case .onRecordUpdate, .beforeRecordUpdate: .updated
        case .onRecordDelete, .beforeRecordDelete: .deleted
        case .onAnyEvent, .onHookFailed: nil
        }
    }

    /// `on_any_event(handler [, options])` and `on_hook_failed(handler [, options])` take no collection.
    var takesCollection: Bool { self != .onAnyEvent && self != .onHookFailed }

    var allowedOptions: Set<String> {
        switch phase {
        case .after: ["name", "async", "retries", "order", "when", "changed"]
        case .before: ["name", "when", "changed"]
        case .failure, .route, .cron: ["name"]
        }
    }
}
