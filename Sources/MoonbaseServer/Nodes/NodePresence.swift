import HookHost
import Logging
import MoonbaseJSON
import MoonbaseModel
import RecordStore
import ServiceLifecycle

/// Keeps this node in the store's registry (issue 14): a heartbeat every `interval` with its
/// name, address, start time, version and the current hooks' digest; at graceful shutdown the
/// node removes itself. After its first heartbeat, and again whenever a reload changed its
/// hooks, it compares its digest with the other live nodes' and warns when it is the odd one.
struct NodePresence: Service {
    let registry: any NodeRegistry
    let hooks: HookGenerations
    let identity: NodeIdentity
    /// When this node started (ISO-8601).
    let started: String
    let interval: Duration
    let logger: Logger

    /// How old a node's last heartbeat may be for it to be listed: three heartbeats, so one late
    /// or failed heartbeat does not drop a node.
    var window: Duration { interval * 3 }

    /// The live nodes as `GET /api/v1/nodes` lists them.
    func listing() async throws(StoreError) -> JSONValue {
        NodeListing.json(try await registry.liveNodes(within: window), answeredBy: identity.name)
    }

    func run() async throws {
        _ = await cancelWhenGracefulShutdown { await identity.settled.wait() }
        if Task.isShuttingDownGracefully || Task.isCancelled { return }
        var compared: String?
        var (joined, failing, shared) = (false, false, false)
        repeat {
            let beat = NodeHeartbeat(id: identity.name, address: identity.address, started: started, version: MoonbaseServer.version,
                                     hooksDigest: hooks.current.hooksDigest)
            do {
                let before = try await registry.recordHeartbeat(beat)
                // Since this node's last heartbeat, another process wrote its row: two nodes have
                // one id (a first heartbeat may find the row of this node's previous run).
                if joined, !shared, let before, before.started != beat.started {
                    shared = true
                    logger.error("another node has this node's id: give each node its own --node-id", metadata: [
                        "node": .string(beat.id), "address": .string(beat.address),
                        "other_address": .string(before.address), "other_started": .string(before.started),
                    ])
                }
                if failing { logger.notice("node heartbeat recorded again", metadata: ["node": .string(beat.id)]) }
                failing = false
                if !joined {
                    logger.info("node joined", metadata: ["node": .string(beat.id), "hooks_digest": .string(beat.hooksDigest)])
                    joined = true
                }
                if compared != beat.hooksDigest {
                    try await compareHooks(beat)
                    compared = beat.hooksDigest
                }
            } catch {
                // Once per outage: the next heartbeat that works says so.
                if !failing { logger.warning("cannot record the node's heartbeat", metadata: ["node": .string(beat.id), "error": .string("\(error)")]) }
                failing = true
            }
        } while (try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }) != nil
        do {
            try await registry.removeNode(id: identity.name)
            logger.info("node left", metadata: ["node": .string(identity.name)])
        } catch {
            logger.warning("cannot remove the node from the registry", metadata: ["node": .string(identity.name), "error": .string("\(error)")])
        }
    }

    /// Warns when this node's hooks are not those the live nodes agree on (see `NodeListing`).
    private func compareHooks(_ beat: NodeHeartbeat) async throws(StoreError) {
        let nodes = try await registry.liveNodes(within: window)
        guard let agreed = NodeListing.agreedDigest(nodes), agreed != beat.hooksDigest else { return }
        logger.warning("this node's hooks differ from the other live nodes'", metadata: [
            "node": .string(beat.id), "hooks_digest": .string(beat.hooksDigest), "hooks_folder": .string(hooks.directory.path),
            "agreed_digest": .string(agreed),
            "agreed_by": .string(nodes.filter { $0.node.hooksDigest == agreed }.map(\.node.id).joined(separator: ",")),
        ])
    }
}
