import LuaRuntime
import MoonbaseJSON

/// What `cron(name, schedule, handler [, options])` registered (SPEC section 14): a handler the
/// server runs at each slot of `schedule`. The hook host keeps and runs it; the server schedules,
/// claims and records its runs.
public struct HookCron: Sendable, Equatable {
    /// The cron's name, unique among all hook files: its runs are kept under it across restarts.
    public var name: String
    public var schedule: CronSchedule
    /// `options.catch_up` (default true): a slot missed while the server was down runs once at
    /// start; false: it is skipped.
    public var catchUp: Bool

    /// Letters, digits, `-`, `_` and `.`: the name appears in URLs (`/api/v1/hooks/cron/{name}/run`).
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 100 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }
}

extension Registrar {
    /// `cron(name, schedule, handler [, options])`; a name used twice is an error, here and across
    /// files (the loader's).
    func registerCron(_ arguments: inout LuaArguments) -> LuaHostResult {
        guard !closed else { return .error("cron: cron hooks can only be registered while the file loads") }
        guard let name = arguments.string(1) else { return arguments.badArgument(1, to: "cron", expected: "name") }
        guard HookCron.isValidName(name) else {
            return .error("cron: name '\(name)' must be 1 to 100 letters, digits, - _ or .")
        }
        guard let text = arguments.string(2) else { return arguments.badArgument(2, to: "cron", expected: "schedule") }
        guard arguments.isFunction(3) else { return .error("cron: handler must be a function (got \(arguments.typeName(3)))") }
        let options: JSONObject
        switch Registrar.options(arguments, at: 4, allowed: ["retries", "catch_up"]) {
        case .success(let read): options = read.0
        case .failure(let error): return .error("cron: \(error.message)")
        }
        guard let retries = Registrar.retries(options) else { return .error("cron: option 'retries' must be an integer from 0 to 100") }
        guard let catchUp = Registrar.flag(options, "catch_up", default: true) else {
            return .error("cron: option 'catch_up' must be a boolean")
        }
        let schedule: CronSchedule
        switch CronSchedule.parse(text) {
        case .success(let parsed): schedule = parsed
        case .failure(let error): return .error("cron: \(error.message)")
        }
        if let earlier = pending.first(where: { $0.handler.cron?.name == name }) {
            return .error("cron: '\(name)' is already defined at line \(earlier.registeredAt)")
        }
        let line = arguments.definitionLine(3) ?? arguments.callerLine
        var handler = HookHandler(name: name, phase: .cron, event: nil, collections: nil, line: line, async: true,
                                  retries: retries, file: file.displayPath)
        handler.cron = HookCron(name: name, schedule: schedule, catchUp: catchUp)
        pending.append(LoadedHandler(handler: handler, ref: arguments.reference(3), named: true, registeredAt: arguments.callerLine))
        return .results(0)
    }
}
