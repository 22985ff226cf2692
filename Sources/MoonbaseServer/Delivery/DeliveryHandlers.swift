import HookHost

/// The after-handlers as the delivery path knows them: each stored handler key gets one
/// `HandlerID`, looked up once when its delivery arrives, and everything else about the handler
/// is read from here by that number.
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
        handlers = catalog.handlers.indices.filter { catalog.handlers[$0].phase == .after }.map { index in
            let handler = catalog.handlers[index]
            return Handler(key: handler.key, catalogIndex: index, isSync: !handler.async, keepsCollectionOrder: handler.order == .collection)
        }
        numbers = Dictionary(handlers.enumerated().map { ($1.key, HandlerID(number: $0)) }, uniquingKeysWith: { first, _ in first })
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
