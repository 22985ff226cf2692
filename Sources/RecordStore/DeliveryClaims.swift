/// Deliveries shared by several nodes (SPEC section 12): each pending delivery runs on one node
/// at a time, the one that claimed it in the database, for as long as that node's lease lasts.
///
/// A write claims its own deliveries for the node that made it, unless an earlier unfinished
/// delivery of the same lane (the record's, or the collection's for `keepsCollectionOrder`, to
/// the same handler) is held by another node or by none: those are left (`NewDeliveries.elsewhere`)
/// for `claim`, which takes a delivery only once no other node holds one of its lane. So a lane's
/// deliveries run on one node at a time, in commit order, wherever their writes were made.
///
/// A node renews its lease (one for all its claims) while it runs; the lease of a node that
/// died runs out, and the others' `claim` takes its deliveries up (some may run twice: at least
/// once is the promise).
public protocol DeliveryClaims: Sendable {
    /// This node's name, which its claims carry.
    var node: String { get }
    /// How long the node's lease, and so its claims, last unrenewed.
    var lease: Duration { get }
    /// Claims, in commit order, up to `limit` unfinished deliveries that no live node holds and
    /// whose lane no other node holds, with their events. When it returns, every event this
    /// node committed before the claim has reached its `CommittedEventSink`, so the caller can
    /// put the claimed deliveries among them in commit order.
    func claim(limit: Int) async throws(StoreError) -> [(delivery: Delivery, event: OutboxEvent)]
    /// Extends this node's lease, which all its claims last as long as.
    func renew() async throws(StoreError)
    /// Runs until cancelled, calling `woken` whenever a node (this one included) has left
    /// deliveries unclaimed (a write behind another node's lane, a retry, claims given back), so
    /// that a claim pass need not wait for its next turn; and once when it starts listening. It
    /// may stay silent (the database away): claim passes on a timer remain the backstop.
    func listenForUnclaimed(_ woken: @escaping @Sendable () -> Void) async
    /// Whether this node holds the claim on delivery `id` (after `requeue`, which leaves a
    /// delivery whose lane another node holds for that node).
    func holds(deliveryID id: Int64) async throws(StoreError) -> Bool
    /// Gives up this node's claims on the unfinished deliveries `ids`, or on all of them (nil:
    /// it is stopping), so that other nodes take them up at once rather than once the lease has
    /// run out.
    func release(_ ids: [Int64]?) async throws(StoreError)
}
