import ArgumentParser
import Foundation
import HookHost
import Logging
import LuaRuntime
import MoonbaseJSON
import MoonbaseModel
import RecordStore

/// `moonbase hooks test FILE` (or `--all`): runs the matching handlers, before and after, on a
/// synthetic event and prints their log lines and outcome; exits 1 if a handler failed.
struct HooksTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "test", abstract: "Run hook handlers on a synthetic event.")

    @Argument(help: "The hook file, e.g. hooks/notify.lua (or --all).")
    var file: String?

    @Flag(help: "Every file of --hooks-dir: their matching handlers, in load order.")
    var all = false

    @Option(name: .customLong("hooks-dir"), help: "The hooks folder, with --all.")
    var hooksDirectory = "./hooks"

    @Option(help: "created, updated or deleted.")
    var event: EventKind

    @Option(help: "The collection the event is about.")
    var collection: String

    @Option(help: "The record's fields as JSON (for delete: as it was); an \"id\" field names the record.")
    var data: String = "{}"

    @Option(name: .customLong("old-data"), help: "The record's fields before an update, as JSON (default: the same as --data).")
    var oldData: String?

    @Flag(name: .customLong("with-db"), help: "Give `records` a throwaway database: the event's collection exists, the record is written as the server would.")
    var withDatabase = false

    @Option(help: "With --with-db: more collections to create first, comma-separated.")
    var collections: String?

    @OptionGroup var budgets: BudgetOptions

    enum EventKind: String, ExpressibleByArgument, CaseIterable {
        case created, updated, deleted
        var type: RecordEventType {
            switch self {
            case .created: .created
            case .updated: .updated
            case .deleted: .deleted
            }
        }
    }

    func run() async throws {
        let store: SQLiteStore? = withDatabase ? try SQLiteStore.inMemory() : nil
        if let store {
            for name in Set([collection] + (collections ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            where !name.isEmpty {
                _ = try await store.createCollection(name: name)
            }
        }
        try await withToolModules(store: store) { modules in try await run(modules: modules, store: store) }
    }

    func validate() throws {
        guard all != (file != nil) else { throw ValidationError("give one hook file, or --all for every file of --hooks-dir") }
        if collections != nil && !withDatabase { throw ValidationError("--collections goes with --with-db") }
        guard let file else { return }
        if (file as NSString).lastPathComponent.hasPrefix("_") {
            let module = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
            throw ValidationError("\(file) is a module, not a hook file (its name starts with _): hook files load it with require(\"\(module)\"); test those instead")
        }
    }

    private func run(modules: [LuaModule], store: (any RecordStore)?) async throws {
        let fields = try parseObject(data, option: "--data")
        let oldFields = try oldData.map { try parseObject($0, option: "--old-data") } ?? fields
        let folder = file.map { ($0 as NSString).deletingLastPathComponent } ?? hooksDirectory
        let directory = HookDirectory(path: folder.isEmpty ? "." : folder)
        var logger = Logger(label: "hooks") { StreamLogHandler.standardOutput(label: $0) }
        logger.logLevel = .debug
        let hooks = try LoadedHooks.load(directory: directory, only: file.map { ($0 as NSString).lastPathComponent }, states: 1,
                                         limits: budgets.limits, modules: modules, logger: logger)
        let catalog = hooks.catalog
        let pool = HookPool(hooks)
        let failed = catalog.files.filter { $0.error != nil }
        for entry in failed { print("✗ \(entry.file) failed to load: \(entry.error ?? "")") }
        if !failed.isEmpty { throw ExitCode(1) }
        var (hookEvent, record) = syntheticEvent(fields: fields, oldFields: oldFields)
        if let store, event != .created {
            // The record as it is before the write, so handlers can read it.
            _ = try await store.insert(event == .updated ? record.withFields(oldFields) : record)
        }
        let before = catalog.matching(.before, event.type, collection: collection)
        if let outcome = await pool.runBefore(event.type, collection: collection, { hookEvent }) {
            switch outcome {
            case .proceed(let changed):
                let fields = Record.droppingSystemFields(changed)
                print("✓ before-hooks: the write goes ahead with \(JSONValue.object(fields).serializedString())")
                if event != .deleted {
                    record = record.withFields(fields)
                    hookEvent.data = record.json
                }
            case .rejected(let message, let status):
                print("✗ before-hooks: refused with \(status): \(message) (nothing would be stored, no after-hooks run)")
                return
            case .failed(let message):
                print("✗ before-hooks: failed, the client would get 500 {\"error\":\"hook failed\"}: \(message)")
                throw ExitCode(1)
            }
        }
        if let store {
            let stored: Record? = switch event {
            case .created: try await store.insert(record).record
            case .updated: try await store.replace(collection: collection, id: record.id, fields: record.fields, ifVersion: 1).record
            case .deleted: try await store.delete(collection: collection, id: record.id, ifVersion: 1).record
            }
            if event != .deleted, let stored {
                hookEvent.data = stored.json
                hookEvent.timestamp = stored.updated
            }
        }
        let matchingAfter = catalog.matching(.after, event.type, collection: collection)
        let after = catalog.admitted(matchingAfter, data: hookEvent.data, oldData: hookEvent.oldData)
        for skipped in matchingAfter where !after.contains(skipped) {
            print("- \(label(catalog.handlers[skipped])): skipped by its when/changed")
        }
        let outcomes = await pool.deliver(hookEvent, to: after, urgent: true)
        for outcome in outcomes {
            let handler = catalog.handlers[outcome.handler]
            if let error = outcome.error {
                print("✗ \(label(handler)): \(error.message)")
            } else {
                print("✓ \(label(handler))")
            }
        }
        if before.isEmpty && matchingAfter.isEmpty {
            print("no handler of \(file ?? hooksDirectory) matches \(event.type.rawValue) on '\(collection)'")
        }
        if outcomes.contains(where: { $0.error != nil }) { throw ExitCode(1) }
    }

    /// A handler as the output names it: with its file when several files run.
    private func label(_ handler: HookHandler) -> String {
        all ? "\(handler.file): \(handler.name) (line \(handler.line))" : "\(handler.name) (line \(handler.line))"
    }

    /// The event the server would build for this write (SPEC section 4): `data` is a whole record
    /// (`id`, `collection`, `created`, `updated` and the fields), `old_data` the record before an
    /// update (the same fields unless `--old-data` says otherwise) or a delete, one event id.
    private func syntheticEvent(fields: JSONObject, oldFields: JSONObject) -> (RecordEvent, Record) {
        let new = Record.new(collection: collection, fields: fields)
        let record = fields["id"]?.text.map { Record(id: $0, collection: collection, created: new.created, updated: new.updated, version: 1, fields: fields) } ?? new
        let old = record.withFields(oldFields)
        let oldData: JSONObject? = switch event {
        case .created: nil
        case .updated: old.json
        case .deleted: record.json
        }
        let timestamp = event == .deleted ? Timestamp.now() : record.updated
        return (RecordEvent(id: EventID.make(), type: event.type, collection: collection, recordID: record.id, data: record.json,
                            oldData: oldData, timestamp: timestamp), record)
    }

    private func parseObject(_ text: String, option: String) throws -> JSONObject {
        do {
            guard case .object(let object) = try JSONValue.parse(text) else {
                throw ValidationError("\(option) must be a JSON object")
            }
            return object
        } catch let error as JSONParseError {
            throw ValidationError("\(option) is not valid JSON: \(error)")
        }
    }
}
