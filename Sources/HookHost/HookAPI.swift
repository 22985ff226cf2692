import LuaRuntime

// What a hook file sees of the hook host, described for editors (`moonbase hooks types`): the
// signatures of the registration globals and the tables their handlers get. The globals
// themselves are made from `RegistrationFunction.allCases` (see `Registrar`); a case without a
// signature here does not compile, and an option without a description fails a test.

extension RegistrationFunction {
    /// The global's signature in LuaLS's syntax.
    var signature: LuaSignature {
        let options = phase == .after ? "AfterOptions" : "HandlerOptions"
        let event = self == .onHookFailed ? "HookFailedEvent" : "RecordEvent"
        let handler = phase == .before
            ? "fun(event: RecordEvent): table?" : "fun(event: \(event))"
        let summary = switch self {
        case .onRecordCreate: "Runs `handler` after a record of `collection` is created (in the background, durably)."
        case .onRecordUpdate: "Runs `handler` after a record of `collection` is updated (in the background, durably)."
        case .onRecordDelete: "Runs `handler` after a record of `collection` is deleted (in the background, durably)."
        case .onAnyEvent: "Runs `handler` after every record event of every collection."
        case .beforeRecordCreate: "Runs `handler` before a record is created: it may change `event.data` (or return a new table) or call `reject`."
        case .beforeRecordUpdate: "Runs `handler` before a record is updated: it may change `event.data` (or return a new table) or call `reject`."
        case .beforeRecordDelete: "Runs `handler` before a record is deleted: it may call `reject`."
        case .onHookFailed: "Runs `handler` when a delivery to an after-handler has failed for good (dead)."
        }
        guard takesCollection else {
            return LuaSignature(summary: summary, parameters: ["handler \(handler)", "options? \(options)"])
        }
        return LuaSignature(summary: summary + " `collection` is a name, a list of names, or nil for all.",
                            parameters: ["collection string|string[]|nil", "handler \(handler)", "options? \(options)"],
                            overloads: ["fun(handler: \(handler), options?: \(options))"])
    }

    /// What each option means, by name: the options classes are made from `allowedOptions` and this.
    static let optionDescriptions: [String: String] = [
        "name": "name? string Names the handler in the listing and the deliveries log (keep it stable: pending deliveries follow it).",
        "async": "async? boolean false: the write's response waits until this handler has run (default true).",
        "retries": "retries? integer How often a failing delivery is tried again, 0 to 100 (default 0).",
        "order": #"order? "record"|"collection" Which deliveries wait for one another: those of one record (default) or of the whole collection."#,
        "when": "when? table<string, any> Runs only when each field of event.data equals its value (json.null: missing).",
        "changed": "changed? string[] Updates only: runs only when at least one of these fields differs between old_data and data.",
    ]
}

/// The registration API as editors see it: the globals, their signatures and the classes they name.
enum HookAPI {
    /// `reject(message [, status])`.
    static let reject = LuaSignature(
        summary: "Refuses the write from a before-hook: nothing is stored and the client gets `status` (default 422) with {\"error\": message}.",
        parameters: ["message string", "status? integer 400 to 599"], returns: ["nil"])

    /// `route(method, path, handler [, options])`.
    static let route = LuaSignature(
        summary: "An HTTP endpoint written in Lua. `path` starts with / (not /api/v1/) and may hold {param} segments. "
            + "The handler's result is the answer: a RouteResponse, a bare table (sent as JSON, 200) or nil (204); "
            + "reject(message, status) answers {\"error\": message}, any other error 500.",
        parameters: ["method " + HookRoute.methods.map { "\"\($0)\"" }.joined(separator: "|"), "path string",
                     "handler fun(req: RouteRequest): RouteResponse|table|nil", "options? RouteOptions"])

    /// `cron(name, schedule, handler [, options])`.
    static let cron = LuaSignature(
        summary: "Runs `handler` on a schedule, in UTC: 5 fields (\"*/5 * * * *\": minute hour day-of-month month day-of-week), "
            + "@hourly, @daily, @weekly, @monthly, @yearly, or @every N with s, m or h (\"@every 30s\"). "
            + "Each run is recorded in the deliveries log, retried with `retries`, and runs once even with several nodes. "
            + "`name` (letters, digits, - _ .) is unique among all hook files.",
        parameters: ["name string", "schedule string", "handler fun(event: CronEvent)", "options? CronOptions"])

    /// The tables handlers get, and the options classes.
    static var classes: [LuaClass] {
        func options(_ phase: HookPhase) -> [String] {
            let function = RegistrationFunction.allCases.first { $0.phase == phase }!
            return function.allowedOptions.sorted().compactMap { optionDescriptions[$0] }
        }
        let optionDescriptions = RegistrationFunction.optionDescriptions
        return [
            LuaClass("RecordEvent", "A record event, as every record hook gets it.", fields: [
                "id string Unique id of the event, the same on every retry (an idempotency key).",
                #"type "record.created"|"record.updated"|"record.deleted""#,
                "collection_name string", "record_id string",
                "data table The record after the write (for a delete, as it was); a before-hook may change it.",
                "old_data? table The record before an update or delete.",
                "timestamp string ISO-8601 UTC with milliseconds, when the event happened.",
                "attempt integer 1 on the first delivery, 2 on the first retry, …",
                "redelivered boolean True when an operator forced this delivery again over newer data.",
            ]),
            LuaClass("HookFailedEvent", "A delivery that failed for good, as `on_hook_failed` handlers get it.", fields: [
                #"type "hook.failed""#, "id string The failed event's id.",
                "delivery table The delivery as the deliveries log shows it (status, attempts, last_error, handler, …).",
                "event RecordEvent The event that could not be delivered.",
            ]),
            LuaClass("HandlerOptions", "Options of a before-hook or an `on_hook_failed` handler.", fields: options(.before)),
            LuaClass("AfterOptions", "Options of an after-hook.", fields: options(.after)),
            LuaClass("RouteRequest", "The request a route handles.", fields: [
                "method string", "path string", "params table<string, string> The path's {param} segments.",
                "query table<string, string>", "headers table<string, string> Names in lower case.",
                "body string", "json? any The body parsed, when it is JSON.",
            ]),
            LuaClass("RouteResponse", "A route's answer.", fields: [
                "status? integer Default 200.", "json? any Sent as JSON.", "body? string Sent as text/plain unless headers say otherwise.",
                "headers? table<string, string>",
            ]),
            LuaClass("CronEvent", "A run of a cron hook.", fields: [
                #"type "cron""#, "id string Unique id of the run, the same on every retry (an idempotency key).",
                "name string The cron's name.",
                "scheduled_at string ISO-8601 UTC with milliseconds: the slot this run is for (for a run by hand, when it was asked for).",
                "timestamp string ISO-8601 UTC with milliseconds, when the run was claimed.",
                "attempt integer 1 on the first attempt, 2 on the first retry, …",
            ]),
            LuaClass("CronOptions", "Options of a cron hook.", fields: [
                "retries? integer How often a failing run is tried again, 0 to 100 (default 0).",
                "catch_up? boolean A run missed while the server was down runs once at start (default true); false skips it.",
            ]),
            LuaClass("RouteOptions", "Options of a route.", fields: [
                optionDescriptions["name"]!, "public? boolean true: no admin token needed (default false).",
            ]),
        ]
    }
}
