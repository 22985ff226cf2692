// The node side of `SQLiteStore` (see `NodeRegistry`): a data folder serves one process, so the
// only node is this one, kept in memory (`LocalNodeRegistry`); nothing is written to the database.

extension SQLiteStore: NodeRegistry {
    @discardableResult
    public func recordHeartbeat(_ node: NodeHeartbeat) async throws(StoreError) -> NodeHeartbeat? {
        try await nodes.recordHeartbeat(node)
    }

    public func liveNodes(within window: Duration) async throws(StoreError) -> [LiveNode] {
        try await nodes.liveNodes(within: window)
    }

    public func removeNode(id: String) async throws(StoreError) {
        try await nodes.removeNode(id: id)
    }
}
