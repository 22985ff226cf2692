import Foundation
import HummingbirdTesting
import MoonbaseServer
import MoonbaseTestSupport
import Testing

/// `moonbase hooks run NAME` and the cron lines of the client commands, against a live server.
@Suite struct CronCommandLineTests {
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary)))
    func hooksRunStartsACronAndTheClientCommandsShowIt() async throws {
        let folder = try HooksFolder(["jobs.lua": #"cron("nightly", "@daily", function(event) log.info("nightly ran", {}) end)"#])
        defer { folder.remove() }
        let configuration = ServerConfiguration(folder)
        let logs = LogCapture()
        let server = try MoonbaseServer(configuration: configuration, logger: logs.logger)
        try await server.application().test(.live) { client in
            let url = "http://127.0.0.1:\(try #require(client.port))"
            let common = ["--url", url, "--token", token]
            let run = try await CommandLineTests.moonbase(["hooks", "run", "nightly"] + common)
            #expect(run.status == 0 && run.output.contains("cron nightly is running: cron-1"), "\(run.output)")
            #expect(await eventually { logs.lines("nightly ran").count == 1 })
            await server.waitForCronRuns()
            let unknown = try await CommandLineTests.moonbase(["hooks", "run", "nope"] + common)
            #expect(unknown.status != 0 && unknown.output.contains("404: no cron hook named 'nope' (loaded: nightly)"), "\(unknown.output)")
            let listed = try await CommandLineTests.moonbase(["hooks", "list"] + common)
            #expect(listed.status == 0 && listed.output.contains("1 cron") && listed.output.contains("@daily"), "\(listed.output)")
            #expect(listed.output.contains("next run ") && !listed.output.contains("last run -"), "\(listed.output)")
            let deliveries = try await CommandLineTests.moonbase(["hooks", "deliveries", "--hook", "nightly"] + common)
            #expect(deliveries.status == 0 && deliveries.output.contains("cron-1  succeeded  attempt 1/1  nightly  cron by hand at 20"),
                    "\(deliveries.output)")
            let records = try await CommandLineTests.moonbase(["hooks", "deliveries", "--kind", "record"] + common)
            #expect(records.status == 0 && records.output.contains("0 deliveries"), "\(records.output)")
            let badID = try await CommandLineTests.moonbase(["hooks", "retry", "cron-x"] + common)
            #expect(badID.status != 0 && badID.output.contains("the id is a number, or cron-N"), "\(badID.output)")
            let notDead = try await CommandLineTests.moonbase(["hooks", "retry", "cron-1"] + common)
            #expect(notDead.status != 0 && notDead.output.contains("cron run cron-1 is succeeded"), "\(notDead.output)")
        }
    }
}
