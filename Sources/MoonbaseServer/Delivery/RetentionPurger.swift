import MoonbaseModel
import Logging
import RecordStore
import ServiceLifecycle

/// Every minute, deletes the events whose deliveries all succeeded longer than `retention`
/// ago, in batches; an event with a pending, failed or dead delivery is never purged. Succeeded
/// cron runs go the same way. Runs until graceful shutdown.
struct RetentionPurger: Service {
    let store: any RecordStore
    let retention: Duration
    let clock: any DeliveryClock
    let logger: Logger
    /// Where cron runs are kept, purged with the same retention.
    var crons: (any CronStore)?
    /// How often it purges.
    static let interval: Duration = .seconds(60)
    /// Events deleted in one store write at most: a write holds the others back meanwhile.
    static let batchSize = 1000

    func run() async throws {
        while (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: Self.interval) })) != nil {
            await purge()
        }
    }

    /// Deletes what is older than `retention` now; returns how many events went.
    @discardableResult
    func purge() async -> Int {
        let cutoff = Timestamp.format(millisecondsSince1970: clock.now() - retention.milliseconds)
        var purged = 0
        do {
            while true {
                let batch = try await store.purgeSucceeded(before: cutoff, batchSize: Self.batchSize)
                purged += batch
                if batch < Self.batchSize { break }
            }
            while let crons {
                let batch = try await crons.purgeSucceededCronRuns(before: cutoff, batchSize: Self.batchSize)
                purged += batch
                if batch < Self.batchSize { break }
            }
        } catch {
            logger.error("cannot purge old hook events", metadata: ["error": .string("\(error)")])
        }
        if purged > 0 { logger.info("purged old hook events", metadata: ["count": .stringConvertible(purged)]) }
        return purged
    }
}
