import MoonbaseJSON
import RecordStore

/// `GET /api/v1/nodes`: the live nodes, and which of them serve other hooks than the rest.
///
/// The hooks every node should serve are those most live nodes serve; when digests tie for most,
/// those of the node running longest (the earliest `started`, then the smaller id), so that a
/// node started with other hooks beside one that was there first is the one flagged.
enum NodeListing {
    /// The digest the other nodes are compared with; nil when no node is live.
    static func agreedDigest(_ nodes: [LiveNode]) -> String? {
        var counts: [String: Int] = [:]
        for live in nodes { counts[live.node.hooksDigest, default: 0] += 1 }
        guard let most = counts.values.max() else { return nil }
        let eldest = nodes.filter { counts[$0.node.hooksDigest] == most }.min { a, b in
            a.node.started != b.node.started ? a.node.started < b.node.started
                : Array(a.node.id.utf8).lexicographicallyPrecedes(Array(b.node.id.utf8))
        }
        return eldest?.node.hooksDigest
    }

    /// `{"node": answering, "items": [...]}`, each item with `hooks_differ` and `self`.
    static func json(_ nodes: [LiveNode], answeredBy answering: String) -> JSONValue {
        let agreed = agreedDigest(nodes)
        return .object([
            "node": .string(answering),
            "items": .array(nodes.map { live in
                .object(JSONObject([
                    ("id", .string(live.node.id)),
                    ("address", .string(live.node.address)),
                    ("started", .string(live.node.started)),
                    ("heartbeat", .string(live.heartbeat)),
                    ("version", .string(live.node.version)),
                    ("hooks_digest", .string(live.node.hooksDigest)),
                    ("hooks_differ", .bool(live.node.hooksDigest != agreed)),
                    ("self", .bool(live.node.id == answering)),
                ]))
            }),
        ])
    }
}
