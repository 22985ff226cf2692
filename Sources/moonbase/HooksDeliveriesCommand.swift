import ArgumentParser
import Foundation
import MoonbaseJSON
import MoonbaseServer

/// Where a running server is, for the commands that ask it.
struct ServerOptions: ParsableArguments {
    @Option(help: "The server's URL.")
    var url = "http://127.0.0.1:8090"

    @Option(help: "The admin token (default: env MOONBASE_ADMIN_TOKEN, else the one kept in --data).")
    var token: String?

    @Option(name: .customLong("data"), help: "The server's data folder, where a generated admin token is kept.")
    var dataDirectory = ServerConfiguration().dataDirectory

    var resolvedToken: String? { AdminToken.forClient(given: token, dataDirectory: dataDirectory) }
}

/// `moonbase hooks deliveries`: the deliveries log of a running server.
struct HooksDeliveriesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "deliveries", abstract: "List hook deliveries (newest first).")

    @Option(help: "pending, running, succeeded, failed or dead.")
    var status: String?

    @Option(help: "A handler's name or key.")
    var hook: String?

    @Option(help: "Only deliveries of this collection.")
    var collection: String?

    @Option(help: "record (deliveries to record hooks) or cron (cron runs); both by default.")
    var kind: String?

    @Option(help: "How many at most.")
    var limit = 50

    @Flag(help: "Print the deliveries as JSON.")
    var json = false

    @OptionGroup var server: ServerOptions

    func run() async throws {
        var query = ["limit=\(limit)"]
        for (name, value) in [("status", status), ("hook", hook), ("collection", collection), ("kind", kind)] {
            if let value { query.append(name + "=" + (value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value)) }
        }
        let listing = try await ServerRequest.send("GET", "/api/v1/hooks/deliveries?" + query.joined(separator: "&"), base: server.url, token: server.resolvedToken)
        if json {
            print(listing.serializedString())
            return
        }
        guard case .array(let items) = listing else { return }
        for item in items {
            func text(_ key: String) -> String {
                switch item.field(key) {
                case .string(let s)?: s
                case let value?: value.serializedString()
                case nil: "?"
                }
            }
            // A cron run has no record: the slot it ran for (or `by hand`) stands there.
            let subject = item.field("kind") == "cron"
                ? "cron " + (item.field("manual") == .bool(true) ? "by hand at " : "slot ") + text("scheduled_at")
                : "\(text("collection"))/\(text("record_id"))"
            var line = "\(text("id"))  \(text("status"))  attempt \(text("attempts"))/\(text("max_attempts"))  \(text("handler"))  \(subject)"
            if let error = item.field("last_error")?.text { line += "\n    \(error)" }
            print(line)
        }
        print("\(items.count) deliver\(items.count == 1 ? "y" : "ies")")
    }
}

/// `moonbase hooks retry ID`: sends a failed or dead delivery again.
struct HooksRetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "retry", abstract: "Send a failed or dead delivery again.")

    @Argument(help: "The delivery's id (a number, or cron-N for a cron run).")
    var id: String

    @Flag(help: "Send it even though a later delivery of its record to the same handler has succeeded (the handler sees event.redelivered = true).")
    var force = false

    @OptionGroup var server: ServerOptions

    func validate() throws {
        guard Int64(id) != nil || (id.hasPrefix("cron-") && Int64(id.dropFirst(5)) != nil) else {
            throw ValidationError("the id is a number, or cron-N for a cron run (got '\(id)')")
        }
    }

    func run() async throws {
        let path = "/api/v1/hooks/deliveries/\(id)/retry" + (force ? "?force=true" : "")
        let delivery = try await ServerRequest.send("POST", path, base: server.url, token: server.resolvedToken)
        print("delivery \(id) is \(delivery.field("status")?.text ?? "queued") again")
    }
}
