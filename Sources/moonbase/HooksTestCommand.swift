import ArgumentParser
import Foundation
import HookHost
import Logging
import LuaRuntime
import MoonbaseJSON
import MoonbaseModel

/// `moonbase hooks test FILE`: runs the file's matching handlers, before and after, on a
/// synthetic event and prints their log lines and outcome; exits 1 if a handler failed.
struct HooksTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "test", abstract: "Run a hook file's handlers on a synthetic event.")

    @Argument(help: "The hook file, e.g. hooks/notify.lua.")
    var file: String

    @Option(help: "created, updated or deleted.")
    var event: EventKind

    @Option(help: "The collection the event is about.")
    var collection: String

    @Option(help: "The record's fields as JSON (for delete: as it was); an \"id\" field names the record.")
    var data: String = "{}"

    @Option(name: .customLong("old-data"), help: "The record's fields before an update, as JSON (default: the same as --data).")
    var oldData: String?

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
        try await withToolModules { modules in try await run(modules: modules) }
    }

    func validate() throws {
        if (file as NSString).lastPathComponent.hasPrefix("_") {
            let module = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
            throw ValidationError("\(file) is a module, not a hook file (its name starts with _): hook files load it with require(\"\(module)\"); test those instead")
        }
    }

    private func run(modules: [LuaModule]) async throws {
        let fields = try parseObject(data, option: "--data")
        let oldFields = try oldData.map { try parseObject($0, option: "--old-data") } ?? fields
        let directory = HookDirectory(path: (file as NSString).deletingLastPathComponent.isEmpty ? "." : (file as NSString).deletingLastPathComponent)
        var logger = Logger(label: "hooks") { StreamLogHandler.standardOutput(label: $0) }
        logger.logLevel = .debug
        let hooks = try LoadedHooks.load(directory: directory, only: (file as NSString).lastPathComponent, states: 1,
                                         limits: budgets.limits, modules: modules, logger: logger)
        let catalog = hooks.catalog
        let pool = HookPool(hooks)
        if let error = catalog.files.first?.error {
            print("✗ \(file) failed to load: \(error)")
            throw ExitCode(1)
        }
        var (hookEvent, record) = syntheticEvent(fields: fields, oldFields: oldFields)
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
        let matchingAfter = catalog.matching(.after, event.type, collection: collection)
        let after = catalog.admitted(matchingAfter, data: hookEvent.data, oldData: hookEvent.oldData)
        for skipped in matchingAfter where !after.contains(skipped) {
            print("- \(catalog.handlers[skipped].name) (line \(catalog.handlers[skipped].line)): skipped by its when/changed")
        }
        let outcomes = await pool.deliver(hookEvent, to: after, urgent: true)
        for outcome in outcomes {
            let handler = catalog.handlers[outcome.handler]
            if let error = outcome.error {
                print("✗ \(handler.name) (line \(handler.line)): \(error.message)")
            } else {
                print("✓ \(handler.name) (line \(handler.line))")
            }
        }
        if before.isEmpty && matchingAfter.isEmpty {
            print("no handler of \(file) matches \(event.type.rawValue) on '\(collection)'")
        }
        if outcomes.contains(where: { $0.error != nil }) { throw ExitCode(1) }
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
