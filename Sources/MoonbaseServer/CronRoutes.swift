import Hummingbird
import MoonbaseJSON
import RecordStore

/// The cron side of the REST API (SPEC section 14): running a cron by hand, and its runs in the
/// deliveries log, where they have the kind `cron` and ids `cron-N`.
extension Routes {
    /// Which deliveries `kind=` asks for.
    enum DeliveryKind: String {
        case record, cron
    }

    /// `POST /api/v1/hooks/cron/{name}/run`: runs the cron now, recorded as a run of its own
    /// (its next slot stays as it was); 202 with the run.
    func registerCron(on api: Endpoints) {
        api.post("hooks/cron/:name/run") { _, context in
            let name = try context.parameters.require("name")
            guard let run = try await crons.runNow(name) else {
                let known = await crons.names
                throw APIError(.notFound, "no cron hook named '\(name)'" + (known.isEmpty ? " (none is loaded)" : " (loaded: \(known.joined(separator: ", ")))"))
            }
            return JSONResponse.make(status: .accepted, .object(run.json))
        }
    }

    /// `kind=record|cron`; nil (both) when absent or empty.
    func deliveryKind(_ text: Substring?) throws -> DeliveryKind? {
        guard let text, !text.isEmpty else { return nil }
        guard let kind = DeliveryKind(rawValue: String(text)) else { throw APIError(.badRequest, "kind must be record or cron") }
        return kind
    }

    /// The cron runs the deliveries log lists for `filter`; `hook` names a cron.
    func cronRuns(_ filter: DeliveryFilter, hook: String?) async throws -> [CronRun] {
        try await crons.store?.cronRuns(DeliveryFilter(status: filter.status, handler: hook, collection: filter.collection, limit: filter.limit)) ?? []
    }

    /// Record deliveries and cron runs, each list newest first, merged by `created`, at most `limit`.
    func newestFirst(_ records: [JSONObject], _ runs: [CronRun], limit: Int) -> [JSONValue] {
        var merged: [JSONValue] = []
        var (record, run) = (records.startIndex, runs.startIndex)
        while merged.count < min(max(limit, 1), 1000), record < records.endIndex || run < runs.endIndex {
            var recordCreated: String?
            if record < records.endIndex, case .string(let created)? = records[record]["created"] { recordCreated = created }
            if run < runs.endIndex, record == records.endIndex || recordCreated.map({ runs[run].created > $0 }) ?? true {
                merged.append(.object(runs[run].json))
                run += 1
            } else {
                merged.append(.object(records[record]))
                record += 1
            }
        }
        return merged
    }

    /// The run id of a `cron-N` delivery id; nil for a record delivery's id.
    func cronRunID(_ context: BasicRequestContext) throws -> Int64? {
        let text = try context.parameters.require("id")
        guard text.hasPrefix(CronRun.idPrefix) else { return nil }
        guard let id = Int64(text.dropFirst(CronRun.idPrefix.count)) else { throw APIError(.notFound, "no such delivery") }
        return id
    }

    /// `GET /api/v1/hooks/deliveries/cron-N`: the run with its `attempt_log`.
    func cronRunWithAttempts(_ id: Int64) async throws -> Response {
        guard let store = crons.store, let run = try await store.cronRun(id: id) else { throw APIError(.notFound, "cron run \(CronRun.idPrefix)\(id) not found") }
        var item = run.json
        item["attempt_log"] = .array(try await store.cronAttempts(runID: id).map { attempt in
            var listed = attempt.json
            listed["delivery_id"] = .string(CronRun.idPrefix + String(id))
            return .object(listed)
        })
        return JSONResponse.make(status: .ok, .object(item))
    }

    /// `POST /api/v1/hooks/deliveries/cron-N/retry`: a failed or dead run runs again now.
    func retryCronRun(_ id: Int64) async throws -> Response {
        switch try await crons.store?.requeueCronRun(id: id) ?? .notFound {
        case .notFound:
            throw APIError(.notFound, "cron run \(CronRun.idPrefix)\(id) not found")
        case .notRetryable(let status):
            throw APIError(.conflict, "cron run \(CronRun.idPrefix)\(id) is \(status.rawValue); only failed or dead runs can be retried")
        case .requeued(let run):
            await crons.retryNow(run)
            return JSONResponse.make(status: .accepted, .object(run.json))
        }
    }
}
