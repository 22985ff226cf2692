import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HookHost
import Logging
import MoonbaseJSON
import MoonbaseServer

/// `moonbase hooks list`: loads the hooks folder offline (or asks a running server) and shows
/// what is loaded and what failed; exits 1 if any file failed.
struct HooksListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Show hook files, their handlers and errors.")

    @Option(name: .customLong("hooks-dir"), help: "The hooks folder (offline listing).")
    var hooksDirectory: String = ProcessInfo.processInfo.environment["MOONBASE_HOOKS_DIR"] ?? "./hooks"

    @Option(help: "Ask the server at this URL instead (its listing has live stats).")
    var url: String?

    @Option(help: "The admin token for --url (default: env MOONBASE_ADMIN_TOKEN, else the one kept in --data).")
    var token: String?

    @Option(name: .customLong("data"), help: "The server's data folder, where a generated admin token is kept.")
    var dataDirectory = ServerConfiguration().dataDirectory

    @Flag(help: "Print the listing as JSON.")
    var json = false

    @OptionGroup var budgets: BudgetOptions

    func run() async throws {
        let listing: JSONValue
        var abandoned: AbandonedStatesSummary?
        var node: String?
        if let url {
            let response: HTTPURLResponse?
            (listing, response) = try await ServerRequest.exchange("GET", "/api/v1/hooks", base: url,
                                                                   token: AdminToken.forClient(given: token, dataDirectory: dataDirectory))
            abandoned = response?.value(forHTTPHeaderField: AbandonedStatesSummary.headerName).flatMap(AbandonedStatesSummary.init(headerValue:))
            node = response?.value(forHTTPHeaderField: MoonbaseServer.nodeHeader)
        } else {
            var logger = Logger(label: "moonbase")
            logger.logLevel = .critical // failures are part of the listing itself
            listing = try await withToolModules { modules in
                try LoadedHooks.load(directory: HookDirectory(path: hooksDirectory), states: 1, limits: budgets.limits,
                                     modules: modules, logger: logger).catalog.listing()
            }
        }
        print(json ? listing.serializedString() : HookListingText.render(listing, withStats: url != nil), terminator: json ? "\n" : "")
        if !json, let abandoned, abandoned.count > 0 {
            print(HookListingText.abandonedLine(abandoned))
        }
        if !json, let node { print("answered by node \(node)") }
        if case .array(let files) = listing, files.contains(where: { $0.field("status") == "failed" }) {
            throw ExitCode(1)
        }
    }

}

extension JSONValue {
    /// The field `key` of an object, else nil.
    func field(_ key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    var text: String? {
        if case .string(let s) = self { return s }
        return nil
    }
}
