import ArgumentParser
import Foundation
import MoonbaseJSON

/// `moonbase hooks run NAME`: runs a cron hook of a running server now.
struct HooksRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a cron hook now (recorded in the deliveries log; its next scheduled run stays as it was).")

    @Argument(help: "The cron's name, as cron(name, ...) registered it.")
    var name: String

    @OptionGroup var server: ServerOptions

    func run() async throws {
        let encoded = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? name
        let run = try await ServerRequest.send("POST", "/api/v1/hooks/cron/\(encoded)/run", base: server.url, token: server.resolvedToken)
        print("cron \(name) is running: \(run.field("id")?.text ?? "?") (see `moonbase hooks deliveries --hook \(name)`)")
    }
}
