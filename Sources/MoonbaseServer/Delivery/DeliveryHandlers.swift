import HookHost

/// The after-handlers as the delivery path knows them: each stored handler key gets one
/// `HandlerID`, looked up once when its delivery arrives, and everything else about the handler
/// is read from here by that number. A reload maps the keys to the new catalog, keeping their
/// numbers (and so the deliveries' lanes): pending deliveries follow their handler's key.
struct DeliveryHandlers {
    struct Handler {
        /// The key deliveries are stored with.
        let key: String
        /// Its position in the catalog; nil for a key no handler has (any more): such
        /// deliveries cannot run.
        let catalogIndex: Int?
        /// `async = false`: a request waits for it.
        let isSync: Bool
        let keepsCollectionOrder: Bool
    }

    private var handlers: [Handler]
    private var numbers: [String: HandlerID]

    /// The catalog's after-handlers.
    init(_ catalog: HookCatalog) {
        handlers = []
        numbers = [:]
        remap(to: catalog)
    }

    /// Maps every key to `catalog` (a new generation's): a key no handler has any more keeps its
    /// number without a catalog index; a new key gets a number. Returns the numbers of the keys
    /// that had a handler and have none now.
    @discardableResult
    mutating func remap(to catalog: HookCatalog) -> Set<HandlerID> {
        var indices: [String: Int] = [:]
        for index in catalog.handlers.indices where catalog.handlers[index].phase == .after {
            if indices[catalog.handlers[index].key] == nil { indices[catalog.handlers[index].key] = index }
        }
        var gone: Set<HandlerID> = []
        for number in handlers.indices {
            let index = indices.removeValue(forKey: handlers[number].key)
            if index == nil && handlers[number].catalogIndex != nil { gone.insert(HandlerID(number: number)) }
            handlers[number] = Self.handler(key: handlers[number].key, at: index, of: catalog)
        }
        for (key, index) in indices.sorted(by: { $0.value < $1.value }) {
            numbers[key] = HandlerID(number: handlers.count)
            handlers.append(Self.handler(key: key, at: index, of: catalog))
        }
        return gone
    }

    private static func handler(key: String, at index: Int?, of catalog: HookCatalog) -> Handler {
        guard let index else { return Handler(key: key, catalogIndex: nil, isSync: false, keepsCollectionOrder: false) }
        let handler = catalog.handlers[index]
        return Handler(key: key, catalogIndex: index, isSync: !handler.async, keepsCollectionOrder: handler.order == .collection)
    }

    /// The number of the handler with `key`; a key no handler has gets one of its own.
    mutating func id(forKey key: String) -> HandlerID {
        if let id = numbers[key] { return id }
        let id = HandlerID(number: handlers.count)
        handlers.append(Handler(key: key, catalogIndex: nil, isSync: false, keepsCollectionOrder: false))
        numbers[key] = id
        return id
    }

    subscript(id: HandlerID) -> Handler { handlers[id.number] }

    /// The handlers with `order = "collection"`.
    var collectionOrdered: Set<HandlerID> {
        Set(handlers.indices.filter { handlers[$0].keepsCollectionOrder }.map { HandlerID(number: $0) })
    }

    /// The keys of the `async = false` handlers by catalog position (nil for the others), for
    /// `catalogSize` positions; empty when there are none.
    func syncKeysByCatalogIndex(catalogSize: Int) -> [String?] {
        guard handlers.contains(where: \.isSync) else { return [] }
        var keys = [String?](repeating: nil, count: catalogSize)
        for handler in handlers where handler.isSync { keys[handler.catalogIndex!] = handler.key }
        return keys
    }
}
