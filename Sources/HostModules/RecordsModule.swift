import HookHost
import LuaRuntime
import MoonbaseJSON
import MoonbaseModel
import RecordStore
import Synchronization

/// The write path of hook-made writes: the REST API's own, so before-hooks run and events are
/// emitted. The server provides it. `depth` counts the hook-made writes that led to a write.
public protocol RecordWriting: Sendable {
    func create(collection: String, body: JSONObject, depth: Int) async throws -> Record
    func update(collection: String, id: String, patch: JSONObject, depth: Int) async throws -> Record
    func delete(collection: String, id: String, depth: Int) async throws
}

/// The `records` module of SPEC section 8: hooks read and write records. Writes take the REST
/// API's path (before-hooks run, events are emitted); each call waits without holding its Lua
/// state's thread or any database lock while Lua runs.
///
/// A write made by a handler is one level deeper than the event that handler handles; past
/// `maxDepth` the call raises, which ends a hook → write → hook loop with a clear error.
public final class RecordsModule: Sendable {
    private let store: any RecordStore
    private let maxDepth: Int
    /// Set once the server has its write path (which needs the hook pool, which needs this module).
    private let writes = Mutex<(any RecordWriting)?>(nil)

    /// Reads go to `store`; writes wait for `connect`. Hook writes nest at most `maxDepth` deep.
    public init(store: any RecordStore, maxDepth: Int) {
        self.store = store
        self.maxDepth = maxDepth
    }

    /// Gives the module its write path, once, before any hook runs.
    public func connect(_ writes: any RecordWriting) {
        self.writes.withLock { $0 = writes }
    }

    /// The Lua module.
    public var module: LuaModule {
        Self.module { [self] name in
            switch name {
            case "get": { [self] arguments in get(&arguments) }
            case "list": { [self] arguments in list(&arguments) }
            case "create": { [self] arguments in create(&arguments) }
            case "update": { [self] arguments in update(&arguments) }
            default: { [self] arguments in delete(&arguments) }
            }
        }
    }

    /// A `records` module for tools that run hooks without a database: every call raises `reason`.
    public static func unavailable(_ reason: String) -> LuaModule {
        module { name in { _ in .error("records.\(name) is not available: \(reason)") } }
    }

    /// The module's functions and their signatures, with the body `body(name)` gives.
    private static func module(_ body: (String) -> LuaHostFunction) -> LuaModule {
        let failure = "string? error"
        return LuaModule(name: "records", summary: "Read and write records; writes run before-hooks and fire after-hooks.", functions: [
            LuaFunction("get", "One record, or nil and a message.", parameters: ["collection string", "id string"],
                        returns: ["Record? record", failure], body: body("get")),
            LuaFunction("list", "A page of records.", parameters: ["collection string", "query? RecordQuery"],
                        returns: ["RecordPage? page", failure], body: body("list")),
            LuaFunction("create", "Creates a record; nil and a message when refused.", parameters: ["collection string", "data table"],
                        returns: ["Record? record", failure], body: body("create")),
            LuaFunction("update", "Changes the given fields of a record.", parameters: ["collection string", "id string", "data table"],
                        returns: ["Record? record", failure], body: body("update")),
            LuaFunction("delete", "Deletes a record.", parameters: ["collection string", "id string"],
                        returns: ["boolean? deleted", failure], body: body("delete")),
        ], classes: [
            LuaClass("Record", "A record: its fields and the system fields.", fields: [
                "id string", "collection string", "created string ISO-8601 UTC.", "updated string ISO-8601 UTC.",
                "[string] any",
            ]),
            LuaClass("RecordQuery", "Which records `records.list` returns.", fields: [
                "page? integer From 1.", "per_page? integer At most \(RecordPage.maxPerPage).",
                #"sort? "created"|"-created"|"updated"|"-updated"|"id"|"-id""#,
                "filter? table<string, string|number|boolean|lightuserdata> Field equals value (json.null: missing).",
            ]),
            LuaClass("RecordPage", "A page of records.", fields: [
                "items Record[]", "page integer", "per_page integer", "total_items integer", "total_pages integer",
            ]),
        ])
    }

    private func get(_ arguments: inout LuaArguments) -> LuaHostResult {
        guard let collection = arguments.string(1) else { return arguments.badArgument(1, to: "records.get", expected: "collection name") }
        guard let id = arguments.string(2) else { return arguments.badArgument(2, to: "records.get", expected: "record id") }
        let store = store
        return waiting { .object(try await store.record(collection: collection, id: id).json) }
    }

    private func list(_ arguments: inout LuaArguments) -> LuaHostResult {
        guard let collection = arguments.string(1) else { return arguments.badArgument(1, to: "records.list", expected: "collection name") }
        var page = 1, perPage = RecordPage.defaultPerPage, sort = RecordSort.default, filters: [RecordFilter] = []
        if !arguments.isNil(2) {
            guard arguments.isTable(2), case .object(let query)? = try? arguments.json(2) else {
                return arguments.badArgument(2, to: "records.list", expected: "query table")
            }
            if let value = query["page"] {
                guard case .int(let number) = value, number >= 1 else { return .error("records.list: page must be a positive integer") }
                page = Int(number)
            }
            if let value = query["per_page"] {
                guard case .int(let number) = value, number >= 1 else { return .error("records.list: per_page must be a positive integer") }
                perPage = min(Int(number), RecordPage.maxPerPage)
            }
            if let value = query["sort"] {
                guard case .string(let text) = value, let parsed = RecordSort(parsing: text) else {
                    return .error("records.list: sort must be one of created, -created, updated, -updated, id, -id")
                }
                sort = parsed
            }
            if let value = query["filter"] {
                guard case .object(let fields) = value else { return .error("records.list: filter must be a table of field = value") }
                for (field, expected) in fields {
                    guard let filter = RecordFilter(field: field, value: expected) else {
                        return .error("records.list: filter.\(field) must be a string, number, boolean or json.null")
                    }
                    filters.append(filter)
                }
            }
        }
        let store = store
        return waiting { [page, perPage, sort, filters] in
            .object(try await store.list(collection: collection, page: page, perPage: perPage, sort: sort, filters: filters).json)
        }
    }

    private func create(_ arguments: inout LuaArguments) -> LuaHostResult {
        guard let collection = arguments.string(1) else { return arguments.badArgument(1, to: "records.create", expected: "collection name") }
        guard arguments.isTable(2), case .object(let data)? = try? arguments.json(2) else { return arguments.badArgument(2, to: "records.create", expected: "data table") }
        return writing("create", arguments) { writes, depth in
            .object(try await writes.create(collection: collection, body: data, depth: depth).json)
        }
    }

    private func update(_ arguments: inout LuaArguments) -> LuaHostResult {
        guard let collection = arguments.string(1) else { return arguments.badArgument(1, to: "records.update", expected: "collection name") }
        guard let id = arguments.string(2) else { return arguments.badArgument(2, to: "records.update", expected: "record id") }
        guard arguments.isTable(3), case .object(let patch)? = try? arguments.json(3) else { return arguments.badArgument(3, to: "records.update", expected: "data table") }
        return writing("update", arguments) { writes, depth in
            .object(try await writes.update(collection: collection, id: id, patch: patch, depth: depth).json)
        }
    }

    private func delete(_ arguments: inout LuaArguments) -> LuaHostResult {
        guard let collection = arguments.string(1) else { return arguments.badArgument(1, to: "records.delete", expected: "collection name") }
        guard let id = arguments.string(2) else { return arguments.badArgument(2, to: "records.delete", expected: "record id") }
        return writing("delete", arguments) { writes, depth in
            try await writes.delete(collection: collection, id: id, depth: depth)
            return .bool(true)
        }
    }

    /// A write one level deeper than the calling handler's event, refused past the limit.
    private func writing(_ name: String, _ arguments: LuaArguments,
                         _ body: @escaping @Sendable (any RecordWriting, Int) async throws -> JSONValue) -> LuaHostResult {
        let depth = ((arguments.context as? HookCallContext)?.depth ?? 0) + 1
        guard depth <= maxDepth else {
            return .error("records.\(name): hook writes nest too deep (limit \(maxDepth)): a hook's write fired hooks that wrote again, \(maxDepth) times")
        }
        guard let writes = writes.withLock({ $0 }) else { return .error("records.\(name): records are not available here") }
        return waiting { try await body(writes, depth) }
    }

    /// Runs `body` off the Lua thread. Expected failures (not found, refused by a before-hook,
    /// a bad collection name) come back as `nil, message`.
    private func waiting(_ body: @escaping @Sendable () async throws -> JSONValue) -> LuaHostResult {
        .suspend(LuaSuspension { _ in
            do {
                return .values([try await body()])
            } catch let refusal as WriteRefusal {
                return .failure(refusal.detail.map { "\(refusal.message): \($0)" } ?? refusal.message)
            } catch let error as StoreError {
                if case .database = error { return .failure("internal error") } // details are for the log, not for scripts
                return .failure(error.description)
            } catch {
                return .failure("internal error")
            }
        })
    }
}
