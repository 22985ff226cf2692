import Logging
import PostgresNIO

// Deliveries shared by the nodes of one database (see `DeliveryClaims`): writes claim theirs as
// they store them (`PostgresOutbox.store`); `claim` takes up the rest.

/// The SQL the claims share.
enum PostgresClaims {
    /// Now, in ms since 1970, by the database's clock: leases are compared by one clock, whatever
    /// the nodes' clocks say.
    static let now = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    /// The advisory lock claim passes run under (any 64-bit number; "mb-claim" in ASCII). One pass
    /// at a time sees every other pass's claims, so two nodes never take deliveries of one lane.
    static let lock: Int64 = 0x6D62_2D63_6C61_696D

    /// The channel on which nodes hear that deliveries were left for others to claim (see
    /// `DeliveryClaims.listenForUnclaimed`).
    static let channel = "moonbase_unclaimed_deliveries"

    /// Tells every listening node, once the transaction on `connection` commits (PostgreSQL
    /// holds a transaction's notifications until then, and sends one of several alike), that it
    /// left deliveries unclaimed.
    static func wakeNodes(_ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query("SELECT pg_notify(\(channel), '')", logger: logger)
    }

    /// How long after its lease ran out a node that holds nothing is forgotten: a day.
    static let forgottenAfterMilliseconds: Int64 = 86_400_000

    /// Starts or extends `node`'s lease, which every claim of the node's lasts as long as.
    static func renewal(node: String, leaseMilliseconds: Int64) -> PostgresQuery {
        """
        INSERT INTO delivery_leases (node, lease_until) VALUES (\(node), \(unescaped: now) + \(leaseMilliseconds))
        ON CONFLICT (node) DO UPDATE SET lease_until = excluded.lease_until
        """
    }
}

extension PostgresStore: DeliveryClaims {
    public var deliveryClaims: (any DeliveryClaims)? { self }

    /// Takes, in commit order, unfinished deliveries held by no live node (never claimed, or
    /// their node's lease ran out), skipping any whose lane has a delivery another node holds.
    /// A lane's earlier unclaimed deliveries come first in the same pass (they have lower ids),
    /// so a pass takes a lane's waiting deliveries together, in order.
    ///
    /// Two statements under the pass lock: the first locks the candidates (so nothing changes
    /// them before the second, which would otherwise re-check only their ids); the second, with a
    /// fresh snapshot, claims those that no delivery outside the candidates holds back. Then a
    /// barrier on the writer: every event this node committed before the pass has reached the
    /// sink by the time the claims are returned, so the scheduler can put them in commit order.
    public func claim(limit: Int) async throws(StoreError) -> [(delivery: Delivery, event: OutboxEvent)] {
        let (node, limit) = (node, Int64(max(limit, 1)))
        let claimed = try await read { client, logger in
            try await client.withTransaction(logger: logger) { connection in
                _ = try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresClaims.lock))", logger: logger)
                var candidates: [Int64] = []
                // Nobody's (an index of its own), and those of nodes whose lease ran out (by node),
                // found first (an array) and then looked up by id: every node runs this five times
                // a second, mostly finding nothing, and as `id IN (…)` it was planned as a join
                // (0.6 ms against 0.05 with 200,000 deliveries and none to claim).
                for try await id in try await connection.query("""
                    SELECT id FROM hook_deliveries
                    WHERE id = ANY(ARRAY(
                        (SELECT id FROM hook_deliveries WHERE status IN ('pending', 'failed') AND claimed_by IS NULL
                         ORDER BY id LIMIT \(limit))
                        UNION ALL
                        (SELECT d.id FROM delivery_leases l
                         JOIN hook_deliveries d ON d.claimed_by = l.node AND d.status IN ('pending', 'failed')
                         WHERE l.node <> \(node) AND l.lease_until < \(unescaped: PostgresClaims.now)
                         ORDER BY d.id LIMIT \(limit))))
                      AND status IN ('pending', 'failed') AND claimed_by IS DISTINCT FROM \(node)
                    ORDER BY id LIMIT \(limit) FOR UPDATE
                    """, logger: logger).decode(Int64.self) {
                    candidates.append(id)
                }
                guard !candidates.isEmpty else { return [(delivery: Delivery, event: OutboxEvent)]() }
                return try await PostgresOutbox.deliveriesWithEvents(try await connection.query("""
                    WITH claimed AS (
                        UPDATE hook_deliveries d SET claimed_by = s.node
                        FROM (SELECT \(node)::text AS node, \(candidates)::bigint[] AS candidates) s
                        WHERE d.id = ANY(s.candidates) AND NOT (\(unescaped: PostgresOutbox.laneHeldElsewhere(
                            handler: "d.handler", ordered: "d.collection_ordered", collection: "d.collection", record: "d.record_id",
                            except: "AND p.id <> d.id AND p.id <> ALL(s.candidates)")))
                        RETURNING d.*
                    )
                    SELECT \(unescaped: PostgresOutbox.deliveryColumns), \(unescaped: PostgresOutbox.eventColumns)
                    FROM claimed d JOIN hook_events e ON e.sequence = d.event_sequence
                    ORDER BY d.id
                    """, logger: logger))
            }
        }
        if !claimed.isEmpty { try await writer.perform { _ in } }
        return claimed
    }

    /// Extends this node's lease: one row, whatever it holds. Also forgets the leases of nodes
    /// gone for a day that hold nothing (a node id is often new at every start, in containers,
    /// and claim passes look at every expired lease).
    public func renew() async throws(StoreError) {
        let (node, lease) = (node, lease.milliseconds)
        _ = try await read { client, logger in
            try await client.query(PostgresClaims.renewal(node: node, leaseMilliseconds: lease), logger: logger)
            try await client.query("""
                DELETE FROM delivery_leases l
                WHERE l.lease_until < \(unescaped: PostgresClaims.now) - \(PostgresClaims.forgottenAfterMilliseconds)
                  AND NOT EXISTS (SELECT 1 FROM hook_deliveries d WHERE d.claimed_by = l.node AND d.status IN ('pending', 'failed'))
                """, logger: logger)
        }
    }

    public func holds(deliveryID id: Int64) async throws(StoreError) -> Bool {
        let node = node
        return try await read { client, logger in
            try await client.query("SELECT 1 FROM hook_deliveries WHERE id = \(id) AND claimed_by = \(node)", logger: logger)
                .collect().count == 1
        }
    }

    public func release(_ ids: [Int64]?) async throws(StoreError) {
        let node = node
        _ = try await read { client, logger in
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("""
                    UPDATE hook_deliveries SET claimed_by = NULL
                    WHERE claimed_by = \(node) AND status IN ('pending', 'failed')
                      AND (\(ids)::bigint[] IS NULL OR id = ANY(\(ids)::bigint[]))
                    """, logger: logger)
                try await PostgresClaims.wakeNodes(connection, logger)
            }
        }
    }

    /// Listens on its own pooled connection, and again a second after it breaks, until the
    /// task is cancelled; `woken` runs once the listening starts (it may have missed some)
    /// and at each notification.
    public func listenForUnclaimed(_ woken: @escaping @Sendable () -> Void) async {
        let (client, logger) = (client, logger)
        var failing = false
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: PostgresClaims.channel) { notifications in
                        woken()
                        for try await _ in notifications { woken() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                if !failing { logger.warning("cannot listen for unclaimed hook deliveries", metadata: ["error": .string("\(StoreError(postgres: error))")]) }
                failing = true
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
