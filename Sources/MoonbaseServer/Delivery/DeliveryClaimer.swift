import Logging
import RecordStore
import ServiceLifecycle

/// On a database shared by several nodes (see `DeliveryClaims`): every `interval`, takes up the
/// deliveries no live node holds (left by writes behind another node's, or held by a node that
/// died) into the scheduler, and renews this node's leases every third of a lease. Stops at
/// graceful shutdown, before the scheduler, which then gives this node's claims back.
struct DeliveryClaimer: Service {
    let scheduler: DeliveryScheduler
    let claims: any DeliveryClaims
    let logger: Logger
    /// How often it looks for deliveries to claim: the most a delivery left behind another
    /// node's waits after that one finished.
    static let interval: Duration = .milliseconds(200)

    func run() async throws {
        let clock = ContinuousClock()
        let renewEvery = max(claims.lease / 3, Self.interval)
        var renewed = clock.now
        var failing = false
        while !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.interval) }
            } catch {
                return
            }
            do {
                if clock.now - renewed >= renewEvery {
                    try await claims.renew()
                    renewed = clock.now
                }
                try await scheduler.claimUnheld(from: claims)
                if failing {
                    logger.info("claiming hook deliveries again")
                    failing = false
                }
            } catch {
                // Once per outage: the database is away, and writes say so too.
                if !failing { logger.warning("cannot claim hook deliveries", metadata: ["error": .string("\(error)")]) }
                failing = true
            }
        }
    }
}
