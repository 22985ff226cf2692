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
}

extension PostgresStore: DeliveryClaims {
    public var deliveryClaims: (any DeliveryClaims)? { self }

    /// Takes, in commit order, unfinished deliveries held by no live node (never claimed, or
    /// their node's lease ran out), skipping any whose lane has a delivery another live node
    /// holds. A lane's earlier unclaimed deliveries come first in the same pass (they have lower
    /// ids), so a pass takes a lane's waiting deliveries together, in order.
    public func claim(limit: Int) async throws(StoreError) -> [(delivery: Delivery, event: OutboxEvent)] {
        let (node, lease, limit) = (node, lease.milliseconds, Int64(max(limit, 1)))
        return try await read { client, logger in
            try await client.withTransaction(logger: logger) { connection in
                _ = try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresClaims.lock))", logger: logger)
                return try await PostgresOutbox.deliveriesWithEvents(try await connection.query("""
                    WITH claimed AS (
                        UPDATE hook_deliveries d SET claimed_by = \(node), lease_until = \(unescaped: PostgresClaims.now) + \(lease)
                        WHERE d.id IN (
                            SELECT c.id FROM hook_deliveries c
                            WHERE c.status IN ('pending', 'failed')
                              AND (c.claimed_by IS NULL OR (c.claimed_by <> \(node) AND c.lease_until < \(unescaped: PostgresClaims.now)))
                              AND NOT EXISTS (
                                  SELECT 1 FROM hook_deliveries p
                                  WHERE p.status IN ('pending', 'failed') AND p.handler = c.handler AND p.collection = c.collection
                                    AND (c.collection_ordered OR p.record_id = c.record_id) AND p.id <> c.id
                                    AND p.claimed_by <> \(node) AND p.lease_until >= \(unescaped: PostgresClaims.now))
                            ORDER BY c.id LIMIT \(limit))
                        RETURNING d.*
                    )
                    SELECT \(unescaped: PostgresOutbox.deliveryColumns), \(unescaped: PostgresOutbox.eventColumns)
                    FROM claimed d JOIN hook_events e ON e.sequence = d.event_sequence
                    ORDER BY d.id
                    """, logger: logger))
            }
        }
    }

    public func renew() async throws(StoreError) {
        let (node, lease) = (node, lease.milliseconds)
        _ = try await read { client, logger in
            try await client.query("""
                UPDATE hook_deliveries SET lease_until = \(unescaped: PostgresClaims.now) + \(lease)
                WHERE claimed_by = \(node) AND status IN ('pending', 'failed')
                """, logger: logger)
        }
    }

    public func release() async throws(StoreError) {
        let node = node
        _ = try await read { client, logger in
            try await client.query("""
                UPDATE hook_deliveries SET claimed_by = NULL, lease_until = NULL
                WHERE claimed_by = \(node) AND status IN ('pending', 'failed')
                """, logger: logger)
        }
    }
}
