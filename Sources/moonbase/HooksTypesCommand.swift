import ArgumentParser
import Foundation
import HookHost

/// `moonbase hooks types`: writes the editor and lint files into the hooks folder.
struct HooksTypesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "types",
        abstract: "Write editor definitions (.moonbase/moonbase.d.lua, .luarc.json) and .luacheckrc into the hooks folder.")

    @Option(name: .customLong("hooks-dir"), help: "The hooks folder.")
    var hooksDirectory = "./hooks"

    func run() async throws {
        let written = try await withToolModules { modules in try HookTypes(modules: modules).write(into: hooksDirectory) }
        print(written.isEmpty ? "\(hooksDirectory): up to date" : written.map { "wrote \(hooksDirectory)/\($0)" }.joined(separator: "\n"))
    }
}

/// `moonbase hooks new NAME`: writes a commented starter hook file.
struct HooksNewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "new", abstract: "Write a commented starter hook file.")

    @Argument(help: "The file's name, without .lua.")
    var name: String

    @Option(help: "The collection it handles.")
    var collection = "posts"

    @Option(help: "created, updated, deleted, before-create, before-update or before-delete.")
    var event: HookStarter.Kind = .created

    @Option(name: .customLong("hooks-dir"), help: "The hooks folder.")
    var hooksDirectory = "./hooks"

    func validate() throws {
        if let problem = HookStarter.problem(withName: name) { throw ValidationError(problem) }
        if collection.isEmpty { throw ValidationError("--collection must not be empty") }
    }

    func run() throws {
        let path = (hooksDirectory as NSString).appendingPathComponent(name + ".lua")
        guard !FileManager.default.fileExists(atPath: path) else {
            throw ValidationFailure("\(path) exists already: choose another name, or remove it first")
        }
        let starter = HookStarter(name: name, collection: collection, kind: event)
        try FileManager.default.createDirectory(atPath: hooksDirectory, withIntermediateDirectories: true)
        try starter.source.write(toFile: path, atomically: true, encoding: .utf8)
        print("wrote \(path)\ntry it: moonbase hooks test \(path) --event \(event.testEvent) --collection \(collection) --data '{\"title\":\"Hello\"}'")
    }
}

extension HookStarter.Kind: ExpressibleByArgument {}
