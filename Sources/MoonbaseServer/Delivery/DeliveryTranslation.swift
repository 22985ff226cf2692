import MoonbaseModel
import HookHost
import MoonbaseJSON
import RecordStore

// Where the delivery path meets the store's and the hook host's types: deliveries into the
// lanes, lane jobs into hook pool work, outcomes into stored attempts, dead deliveries into
// `hook.failed` events. The lanes themselves know none of these types.
extension DeliveryScheduler {
    /// A just-committed event's deliveries that this node runs, all first attempts.
    func laneDeliveries(_ deliveries: NewDeliveries) -> [LaneDelivery] {
        deliveries.indices.filter(deliveries.isHere).map { position in
            let target = deliveries.targets[position]
            return LaneDelivery(id: deliveries.id(at: position), handler: handlers.id(forKey: target.handler), attempts: 0,
                                maxAttempts: target.maxAttempts, retryAt: nil)
        }
    }

    /// A delivery read from the store (pending or failed).
    func laneDelivery(_ delivery: Delivery) -> LaneDelivery {
        LaneDelivery(id: delivery.id, handler: handlers.id(forKey: delivery.handler), attempts: delivery.attempts,
                     maxAttempts: delivery.maxAttempts, retryAt: delivery.status == .failed ? delivery.nextAttemptAt : nil,
                     redelivered: delivery.redelivered)
    }

    /// The hook pool's batch for `job`, and whether a request waits on some of it.
    func hookWork(_ job: Lanes.Job) -> (work: [(event: RecordEvent, handlers: [Int])], urgent: Bool) {
        var urgent = false
        let work = job.groups.map { group in
            let runnable = group.deliveries.compactMap { delivery in
                let handler = handlers[delivery.handler]
                urgent = urgent || handler.isSync
                return handler.catalogIndex
            }
            var event = group.event.event
            event.attempt = group.attempt
            event.redelivered = group.deliveries[0].redelivered // a retry runs alone in its group
            return (event, runnable)
        }
        return (work, urgent)
    }

    /// The outcome of the delivery at `position` in its group; nil if its handler did not run.
    /// It is usually at the same position (the handlers run in the group's order).
    private func outcome(of delivery: LaneDelivery, at position: Int, in outcomes: [HookOutcome], _ handlers: DeliveryHandlers) -> HookOutcome? {
        guard let index = handlers[delivery.handler].catalogIndex else { return nil }
        return position < outcomes.count && outcomes[position].handler == index ? outcomes[position] : outcomes.first { $0.handler == index }
    }

    /// How each delivery of `job` went, in the order of its groups' deliveries (`handlers`: as
    /// mapped when the job started).
    func attemptResults(_ job: Lanes.Job, _ outcomes: [[HookOutcome]], _ handlers: DeliveryHandlers) -> [AttemptResult] {
        var results: [AttemptResult] = []
        results.reserveCapacity(job.groups.reduce(0) { $0 + $1.deliveries.count })
        for (group, outcomes) in zip(job.groups, outcomes) {
            for (position, delivery) in group.deliveries.enumerated() {
                let outcome = outcome(of: delivery, at: position, in: outcomes, handlers)
                results.append(outcome.map { $0.error == nil ? .succeeded : .failed } ?? .handlerGone)
            }
        }
        return results
    }

    /// The attempts of `job` as the store records them.
    func attemptRecords(_ job: Lanes.Job, _ outcomes: [[HookOutcome]], _ verdicts: [AttemptVerdict], startedAt: String,
                        _ handlers: DeliveryHandlers) -> [AttemptOutcome] {
        var records: [AttemptOutcome] = []
        records.reserveCapacity(verdicts.count)
        for (group, outcomes) in zip(job.groups, outcomes) {
            for (position, delivery) in group.deliveries.enumerated() {
                let verdict = verdicts[records.count]
                let (status, next): (DeliveryStatus, Int64?) = switch verdict {
                case .succeeded: (.succeeded, nil)
                case .retry(let at): (.failed, at)
                case .dead: (.dead, nil)
                }
                let (id, attempt) = (delivery.id, delivery.attempts + 1)
                guard let outcome = outcome(of: delivery, at: position, in: outcomes, handlers) else {
                    records.append(AttemptOutcome(deliveryID: id, attempt: attempt, started: startedAt, durationMilliseconds: 0,
                                                  error: "handler no longer loaded: \(handlers[delivery.handler].key)",
                                                  status: status, nextAttemptAt: next))
                    continue
                }
                let milliseconds = Double(outcome.duration.components.seconds) * 1000 + Double(outcome.duration.components.attoseconds) / 1e15
                records.append(AttemptOutcome(deliveryID: id, attempt: attempt, started: startedAt, durationMilliseconds: milliseconds,
                                              error: outcome.error?.message, status: status, nextAttemptAt: next))
            }
        }
        return records
    }

    /// Logs a dead delivery and runs the `on_hook_failed` handlers on it.
    func deadLetter(_ delivery: LaneDelivery, _ event: OutboxEvent, error: String?) {
        let key = handlers[delivery.handler].key
        logger.error("hook delivery is dead", metadata: [
            "delivery_id": .stringConvertible(delivery.id), "handler": .string(key), "event_id": .string(event.id),
            "attempts": .stringConvertible(delivery.attempts), "error": .string(error ?? ""),
        ])
        if hooks.catalog.failureHandlers.isEmpty { return }
        let (hooks, store, logger, id, attempts) = (hooks, store, logger, delivery.id, delivery.attempts)
        Task {
            // The delivery as stored (its outcome was recorded before it was declared dead; the
            // outcome is set again below in case recording it failed).
            let stored: Delivery
            do {
                stored = try await store.delivery(id: id)
            } catch {
                return logger.error("cannot read a dead hook delivery", metadata: ["delivery_id": .stringConvertible(id), "error": .string("\(error)")])
            }
            var failed = stored.json
            failed["status"] = "dead"
            failed["attempts"] = .int(Int64(attempts))
            failed["last_error"] = error.map { .string($0) } ?? .null
            let payload: JSONObject = [
                "type": "hook.failed", "id": .string(event.id), "delivery": .object(failed), "event": .object(event.json),
            ]
            await hooks.withCurrent { await $0.pool.deliverFailure(payload) }
        }
    }
}
