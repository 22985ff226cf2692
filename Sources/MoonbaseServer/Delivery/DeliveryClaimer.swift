import Logging
import RecordStore
import ServiceLifecycle

/// On a database shared by several nodes (see `DeliveryClaims`): every `interval`, takes up the
/// deliveries no live node holds (left by writes behind another node's, or held by a node that
/// died) into the scheduler, and at once when the database says a node left some (LISTEN); and,
/// in a loop of its own (a slow pass must not delay it), renews this node's leases every third
/// of a lease. Stops at graceful shutdown, before the scheduler, which then gives this node's
/// claims back.
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
            // Notifications ring a bell that keeps at most one ring: however many arrive during a
            // pass, one more pass follows it. A failed pass is the timer loop's to report.
            let (bell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            group.addTask {
                await cancelWhenGracefulShutdown { await claims.listenForUnclaimed { ring.yield() } }
                ring.finish()
            }
            group.addTask {
                for await _ in bell {
                    // A pass under way may have looked before the commit that rang: one more after it.
                    while (try? await scheduler.claimUnheld(from: claims)) == false { try? await Task.sleep(for: .milliseconds(5)) }
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
