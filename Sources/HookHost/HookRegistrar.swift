import LuaRuntime
import MoonbaseJSON

/// The registration API of SPEC sections 3 and 14 for one file in one Lua state: the globals
/// `on_record_create` … `before_record_delete`, `route`, `cron` and `reject`, collecting handlers as the file's
/// top-level code registers them (they are kept only if the whole file loads).
final class Registrar {
    let file: HookFile
    var pending: [LoadedHandler] = []
    /// Set once the file's top-level code has run: registering from a handler is an error.
    var closed = false

    init(file: HookFile) {
        self.file = file
    }

    func makeGlobals(in state: LuaState) -> LuaRef {
        var functions: [(name: String, body: (inout LuaArguments) -> LuaHostResult)] = RegistrationFunction.allCases.map { function in
            (function.rawValue, { arguments in self.register(function, &arguments) })
        }
        functions.append(("route", { arguments in self.registerRoute(&arguments) }))
        functions.append(("cron", { arguments in self.registerCron(&arguments) }))
        functions.append(("reject", Registrar.reject))
        return state.makeTable(functions: functions)
    }

    private func register(_ function: RegistrationFunction, _ arguments: inout LuaArguments) -> LuaHostResult {
        let name = function.rawValue
        guard !closed else { return .error("\(name): handlers can only be registered while the file loads") }
        var position: Int32 = 1
        var collections: [String]?
        if function.takesCollection && !arguments.isFunction(1) {
            switch Registrar.collections(arguments, at: 1) {
            case .success(let names): collections = names
            case .failure(let error): return .error("\(name): \(error.message)")
            }
            position = 2
        }
        guard arguments.isFunction(position) else {
            return .error("\(name): handler must be a function (got \(arguments.typeName(position)))")
        }
        let options: JSONObject, handlerName: String?
        switch Registrar.options(arguments, at: position + 1, allowed: function.allowedOptions) {
        case .success(let read): (options, handlerName) = read
        case .failure(let error): return .error("\(name): \(error.message)")
        }
        guard let async = Registrar.flag(options, "async", default: true) else { return .error("\(name): option 'async' must be a boolean") }
        guard let retries = Registrar.retries(options) else { return .error("\(name): option 'retries' must be an integer from 0 to 100") }
        var order = DeliveryOrder.record
        if let value = options["order"] {
            guard case .string(let text) = value, let parsed = DeliveryOrder(rawValue: text) else {
                return .error("\(name): option 'order' must be \"record\" or \"collection\"")
            }
            order = parsed
        }
        var condition: HookCondition?
        switch HookCondition.parse(options, for: function) {
        case .success(let parsed): condition = parsed
        case .failure(let error): return .error("\(name): \(error.message)")
        }
        let line = arguments.definitionLine(position) ?? arguments.callerLine
        var handler = HookHandler(
            name: handlerName ?? anonymousName(line: line), phase: function.phase, event: function.event,
            collections: collections, line: line, async: function.phase == .after ? async : false, retries: retries,
            file: file.displayPath)
        handler.order = order
        handler.condition = condition
        pending.append(LoadedHandler(handler: handler, ref: arguments.reference(position), named: handlerName != nil,
                                     registeredAt: arguments.callerLine))
        return .results(0)
    }

    /// `route(method, path, handler [, options])` (SPEC section 14); a second route with the same
    /// method and path (parameter names aside) is an error, here and across files (the loader's).
    private func registerRoute(_ arguments: inout LuaArguments) -> LuaHostResult {
        guard !closed else { return .error("route: routes can only be registered while the file loads") }
        guard let method = arguments.string(1) else { return arguments.badArgument(1, to: "route", expected: "method (GET, POST, …)") }
        guard let path = arguments.string(2) else { return arguments.badArgument(2, to: "route", expected: "path") }
        guard arguments.isFunction(3) else { return .error("route: handler must be a function (got \(arguments.typeName(3)))") }
        let options: JSONObject, handlerName: String?
        switch Registrar.options(arguments, at: 4, allowed: ["name", "public"]) {
        case .success(let read): (options, handlerName) = read
        case .failure(let error): return .error("route: \(error.message)")
        }
        guard let isPublic = Registrar.flag(options, "public", default: false) else { return .error("route: option 'public' must be a boolean") }
        let route: HookRoute
        switch HookRoute.parse(method: method, path: path, isPublic: isPublic) {
        case .success(let parsed): route = parsed
        case .failure(let error): return .error("route: \(error.message)")
        }
        if let earlier = pending.first(where: { $0.handler.route?.identity == route.identity }) {
            return .error("route: \(route.method) \(route.path) is already defined at line \(earlier.registeredAt)")
        }
        let line = arguments.definitionLine(3) ?? arguments.callerLine
        var handler = HookHandler(name: handlerName ?? anonymousName(line: line), phase: .route, event: nil, collections: nil,
                                  line: line, async: false, retries: 0, file: file.displayPath)
        handler.route = route
        pending.append(LoadedHandler(handler: handler, ref: arguments.reference(3), named: handlerName != nil, registeredAt: arguments.callerLine))
        return .results(0)
    }

    func anonymousName(line: Int) -> String {
        "anonymous@\(file.displayPath.split(separator: "/").last.map(String.init) ?? file.displayPath):\(line)"
    }

    /// `options.retries` (0 when absent); nil when it is no integer from 0 to 100.
    static func retries(_ options: JSONObject) -> Int? {
        switch options["retries"] {
        case nil: 0
        case .int(let value)? where (0...100).contains(value): Int(value)
        default: nil
        }
    }

    /// `options[key]` as a boolean, `fallback` when it is absent; nil when it is no boolean.
    static func flag(_ options: JSONObject, _ key: String, default fallback: Bool) -> Bool? {
        switch options[key] {
        case nil: fallback
        case .bool(let value)?: value
        default: nil
        }
    }

    /// The options table at `index` (none: empty) with only `allowed` keys, and its `name`.
    static func options(_ arguments: LuaArguments, at index: Int32,
                                allowed: Set<String>) -> Result<(JSONObject, name: String?), RegistrationError> {
        var options = JSONObject()
        if !arguments.isNil(index) {
            guard arguments.isTable(index), case .object(let object)? = try? arguments.json(index) else {
                return .failure(RegistrationError(message: "options must be a table of name = value (got \(arguments.typeName(index)))"))
            }
            options = object
        }
        for key in options.keys where !allowed.contains(key) {
            return .failure(RegistrationError(message: "unknown option '\(key)' (allowed: \(allowed.sorted().joined(separator: ", ")))"))
        }
        switch options["name"] {
        case nil: return .success((options, nil))
        case .string(let value)? where !value.isEmpty: return .success((options, value))
        default: return .failure(RegistrationError(message: "option 'name' must be a non-empty string"))
        }
    }

    /// `collection` is a name, a non-empty list of names, or nil for all collections.
    private static func collections(_ arguments: LuaArguments, at index: Int32) -> Result<[String]?, RegistrationError> {
        if arguments.isNil(index) { return .success(nil) }
        if let name = arguments.string(index) { return .success([name]) }
        if arguments.isTable(index), case .array(let items)? = try? arguments.json(index), !items.isEmpty {
            let names = items.compactMap { item -> String? in
                if case .string(let name) = item { return name }
                return nil
            }
            if names.count == items.count { return .success(names) }
        }
        return .failure(RegistrationError(message:
            "collection must be a name, a non-empty list of names or nil (got \(arguments.typeName(index)))"))
    }

    /// `reject(message [, status])`: refuses the write with `status` (default 422).
    private static func reject(_ arguments: inout LuaArguments) -> LuaHostResult {
        guard let message = arguments.string(1) else {
            return .error("reject: message must be a string (got \(arguments.typeName(1)))")
        }
        var status: Int64 = 422
        if !arguments.isNil(2) {
            guard let given = arguments.integer(2), (400...599).contains(given) else {
                return .error("reject: status must be an integer from 400 to 599")
            }
            status = given
        }
        return .raise(.object([
            Refusal.marker: .bool(true), "message": .string(message), "status": .int(status),
            "line": .int(Int64(arguments.callerLine)),
        ]))
    }
}

struct RegistrationError: Error {
    var message: String
}
