import Logging
import PostgresNIO

// The node side of `PostgresStore` (see `NodeRegistry`): one row per node in `nodes`, its
// heartbeat stamped by the database's clock, so the nodes' clocks do not matter. A heartbeat is
// one statement with no event to order, so it takes a pool connection rather than a place in the
// writer's group commit (where a slow group would delay it).

extension PostgresStore: NodeRegistry {
    @discardableResult
    public func recordHeartbeat(_ node: NodeHeartbeat) async throws(StoreError) -> NodeHeartbeat? {
        try await read { client, logger in
            // Every part of the statement sees the table as it was before: `previous` is the old row.
            // Nodes silent for a day are forgotten (one that died leaves its row).
            let rows = try await client.query("""
                WITH forgotten AS (DELETE FROM nodes WHERE heartbeat_at < now() - interval '1 day' AND id <> \(node.id)),
                previous AS (SELECT address, started, version, hooks_digest FROM nodes WHERE id = \(node.id))
                INSERT INTO nodes (id, address, started, version, hooks_digest, heartbeat_at)
                VALUES (\(node.id), \(node.address), \(node.started), \(node.version), \(node.hooksDigest), now())
                ON CONFLICT (id) DO UPDATE SET address = excluded.address, started = excluded.started, version = excluded.version,
                    hooks_digest = excluded.hooks_digest, heartbeat_at = excluded.heartbeat_at
                RETURNING (SELECT address FROM previous), (SELECT started FROM previous), (SELECT version FROM previous),
                    (SELECT hooks_digest FROM previous)
                """, logger: logger)
            var before: NodeHeartbeat?
            for try await (address, started, version, digest) in rows.decode((String?, String?, String?, String?).self) {
                if let address, let started, let version, let digest {
                    before = NodeHeartbeat(id: node.id, address: address, started: started, version: version, hooksDigest: digest)
                }
            }
            return before
        }
    }

    public func liveNodes(within window: Duration) async throws(StoreError) -> [LiveNode] {
        let seconds = Double(window.components.seconds) + Double(window.components.attoseconds) / 1e18
        return try await read { client, logger in
            var nodes: [LiveNode] = []
            let rows = try await client.query("""
                SELECT id, address, started, version, hooks_digest,
                       to_char(heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                FROM nodes WHERE heartbeat_at > now() - make_interval(secs => \(seconds)) ORDER BY id COLLATE "C"
                """, logger: logger)
            for try await (id, address, started, version, digest, heartbeat) in rows.decode((String, String, String, String, String, String).self) {
                nodes.append(LiveNode(node: NodeHeartbeat(id: id, address: address, started: started, version: version, hooksDigest: digest),
                                      heartbeat: heartbeat))
            }
            return nodes
        }
    }

    public func removeNode(id: String) async throws(StoreError) {
        try await read { client, logger in
            _ = try await client.query("DELETE FROM nodes WHERE id = \(id)", logger: logger)
        }
    }
}

/// The nodes table on PostgreSQL.
enum PostgresNodes {
    /// Migration 4.
    static let migration = """
        -- One row per node that has sent a heartbeat; a node deletes its own at graceful shutdown,
        -- and one that died is left out of listings once its heartbeat is old.
        CREATE TABLE nodes (
            id           text PRIMARY KEY,
            address      text NOT NULL,
            started      text NOT NULL,   -- ISO-8601, as the node wrote it
            version      text NOT NULL,
            hooks_digest text NOT NULL,
            heartbeat_at timestamptz NOT NULL  -- the database's now(), never a node's clock
        );
        """
}
