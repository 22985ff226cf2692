import Hummingbird
import Synchronization

/// This node's name and address. Both are known from the configuration, except with port 0:
/// then the address, and the name when no `--node-id` gives it, are known once the server
/// listens, and the heartbeat waits for that (`settled`) so the node is never listed under
/// port 0.
final class NodeIdentity: Sendable {
    /// The response header that names the node that answered.
    static let header = HTTPFields.Element.Name(MoonbaseServer.nodeHeader)!

    private let state: Mutex<(name: String, address: String)>
    private let named: Bool
    private let host: String
    /// Open once the name is final.
    let settled: Latch

    init(_ configuration: ServerConfiguration) {
        host = configuration.host
        named = configuration.nodeID != nil
        state = Mutex((configuration.node, "\(configuration.host):\(configuration.port)"))
        settled = Latch(count: configuration.port == 0 && !named ? 1 : 0)
    }

    /// The node's name, as `Moonbase-Node`, the listings and `/metrics` give it.
    var name: String { state.withLock { $0.name } }

    /// Where it serves (host:port).
    var address: String { state.withLock { $0.address } }

    /// The server listens on `port`: the address is known, and the name if it is host:port.
    func listening(on port: Int) {
        state.withLock { state in
            state.address = "\(host):\(port)"
            if !named { state.name = state.address }
        }
        settled.open()
    }
}
