import Logging
import RecordStore
import ServiceLifecycle

/// On a database shared by several nodes (see `DeliveryClaims`): every `interval`, takes up the
/// deliveries no live node holds (left by writes behind another node's, or held by a node that
/// died) into the scheduler; and, in a loop of its own (a slow pass must not delay it), renews
/// this node's leases every third of a lease. Stops at graceful shutdown, before the scheduler,
/// which then gives this node's claims back.
struct DeliveryClaimer: Service {
    let scheduler: DeliveryScheduler
    let claims: any DeliveryClaims
    let logger: Logger
    /// How often it looks for deliveries to claim: the most a delivery left behind another
    /// node's waits after that one finished.
    static let interval: Duration = .milliseconds(200)

    func run() async throws {
        let (scheduler, claims) = (scheduler, claims)
        await withDiscardingTaskGroup { group in
            group.addTask {
                await repeatUntilShutdown(every: max(claims.lease / 3, Self.interval), "renew this node's hook deliveries") {
                    try await claims.renew()
                }
            }
            group.addTask {
                await repeatUntilShutdown(every: Self.interval, "claim hook deliveries") {
                    try await scheduler.claimUnheld(from: claims)
                }
            }
        }
    }

    /// Runs `step` every `interval` until graceful shutdown. A failure is logged once per outage
    /// (the database is away, and writes say so too); a failed step is tried again at the next
    /// tick.
    private func repeatUntilShutdown(every interval: Duration, _ what: String, _ step: () async throws -> Void) async {
        var failing = false
        while !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            do {
                try await step()
                if failing { logger.info("able to \(what) again") }
                failing = false
            } catch {
                if !failing { logger.warning("cannot \(what)", metadata: ["error": .string("\(error)")]) }
                failing = true
            }
        }
    }
}
