import ArgumentParser
import MoonbaseJSON

/// `moonbase hooks reload`: a running server loads its hooks again (SPEC section 13).
struct HooksReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload", abstract: "Make a running server load its hooks again (refused, and nothing changes, if a loaded file now fails).")

    @OptionGroup var server: ServerOptions

    func run() async throws {
        let listing = try await ServerRequest.send("POST", "/api/v1/hooks/reload", base: server.url, token: server.resolvedToken)
        guard case .array(let files) = listing else { return }
        let failed = files.filter { $0.field("status")?.text == "failed" }
        let generation = files.first?.field("generation").map { $0.serializedString() } ?? "?"
        print("reloaded: generation \(generation), \(files.count - failed.count) file\(files.count - failed.count == 1 ? "" : "s") loaded, \(failed.count) failed")
        for file in failed { print("  \(file.field("file")?.text ?? "?"): \(file.field("error")?.text ?? "")") }
    }
}
