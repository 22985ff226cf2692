import MoonbaseModel
import Synchronization

/// Where the nodes sharing a store say they are alive (issue 14): each node records a heartbeat
/// every few seconds, and any node lists those seen lately. A protocol of its own beside
/// `RecordStore`, as `CronStore` is, so the record protocol does not grow.
///
/// On PostgreSQL the heartbeat is stamped by the database's clock (`now()`), and liveness is
/// judged by it too, so the nodes' own clocks do not matter. SQLite serves one process per data
/// folder (it is locked), so its only node is itself, kept in memory.
public protocol NodeRegistry: Sendable {
    /// Records that `node` is alive now (inserting it, or updating every field of its row);
    /// returns what its row said before, nil if it had none. A row another process wrote since
    /// this node's last heartbeat (another `started`) means two nodes share the id.
    @discardableResult
    func recordHeartbeat(_ node: NodeHeartbeat) async throws(StoreError) -> NodeHeartbeat?
    /// The nodes whose last heartbeat is less than `window` old, by id (bytewise).
    func liveNodes(within window: Duration) async throws(StoreError) -> [LiveNode]
    /// Forgets a node (its graceful shutdown): it is no longer listed, whatever the window.
    func removeNode(id: String) async throws(StoreError)
}

/// What a node says of itself with each heartbeat.
public struct NodeHeartbeat: Sendable, Equatable {
    /// Its name (`serve --node-id`, or host:port), unique among the nodes.
    public var id: String
    /// Where it serves (host:port).
    public var address: String
    /// When it started (ISO-8601).
    public var started: String
    /// Its Moonbase version.
    public var version: String
    /// The digest of the hooks it serves (`HookDirectory.digest`).
    public var hooksDigest: String

    public init(id: String, address: String, started: String, version: String, hooksDigest: String) {
        self.id = id
        self.address = address
        self.started = started
        self.version = version
        self.hooksDigest = hooksDigest
    }
}

/// A node seen lately: what it said and when it last did (the store's clock, ISO-8601).
public struct LiveNode: Sendable, Equatable {
    public var node: NodeHeartbeat
    public var heartbeat: String

    public init(node: NodeHeartbeat, heartbeat: String) {
        self.node = node
        self.heartbeat = heartbeat
    }
}

/// The registry of a store that only one process uses (SQLite's): in memory, on this process's
/// clock; what a server uses when its store keeps no nodes.
public final class LocalNodeRegistry: NodeRegistry {
    private let nodes = Mutex<[String: (node: NodeHeartbeat, at: ContinuousClock.Instant, heartbeat: String)]>([:])

    public init() {}

    @discardableResult
    public func recordHeartbeat(_ node: NodeHeartbeat) async throws(StoreError) -> NodeHeartbeat? {
        nodes.withLock { $0.updateValue((node, .now, Timestamp.now()), forKey: node.id)?.node }
    }

    public func liveNodes(within window: Duration) async throws(StoreError) -> [LiveNode] {
        let now = ContinuousClock.now
        return nodes.withLock { nodes in
            nodes.values.filter { now - $0.at < window }.map { LiveNode(node: $0.node, heartbeat: $0.heartbeat) }
        }.sorted { Array($0.node.id.utf8).lexicographicallyPrecedes(Array($1.node.id.utf8)) }
    }

    public func removeNode(id: String) async throws(StoreError) {
        nodes.withLock { _ = $0.removeValue(forKey: id) }
    }
}
