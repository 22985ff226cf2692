/// A JSON object that keeps its keys in insertion order.
///
/// Records keep the field order the client sent, so this is an ordered list of unique keys,
/// not a dictionary. Small objects (the common case: a record has a handful of fields) are
/// searched linearly, which beats hashing; a hash index is added once an object grows large,
/// so big objects stay O(1) per lookup.
///
/// Keys are compared by their UTF-8 bytes (as RFC 8259 suggests, and as Lua and SQLite do),
/// not by Unicode canonical equivalence: `"é"` and `"e\u{301}"` are two different keys.
///
/// `==` is order-insensitive: two objects are equal when they have the same keys with equal values.
public struct JSONObject: Sendable, Equatable, ExpressibleByDictionaryLiteral, Sequence {
    public typealias Element = (key: String, value: JSONValue)

    /// One key/value pair. A struct rather than the `Element` tuple: arrays of tuples are
    /// destroyed through the runtime's generic tuple witness, which is markedly slower.
    @usableFromInline
    internal struct Entry: Sendable {
        @usableFromInline var key: String
        @usableFromInline var value: JSONValue

        @inlinable init(key: String, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    /// The entries in order; keys are unique.
    @usableFromInline internal var entries: [Entry]
    /// key → position in `entries`; only present once `entries.count > indexThreshold`.
    internal var index: [JSONKey: Int]?

    /// Above this many keys a hash index pays for itself.
    internal static var indexThreshold: Int { 16 }

    /// An empty object.
    public init() {
        entries = []
        index = nil
    }

    /// An empty object with room for `minimumCapacity` keys.
    public init(minimumCapacity: Int) {
        self.init()
        entries.reserveCapacity(minimumCapacity)
    }

    /// An object from pairs in order; a later duplicate key replaces the earlier value in place.
    public init(_ pairs: [(String, JSONValue)]) {
        self.init()
        entries.reserveCapacity(pairs.count)
        for (key, value) in pairs { self[key] = value }
    }

    /// `prefix` (whose keys must be unique), then the members of `rest` whose keys are not among
    /// them, in order. Each member of `rest` is compared with the prefix's keys only, so putting a
    /// few fixed keys before an object costs one pass over it.
    public init(prefix: [(String, JSONValue)], then rest: JSONObject) {
        self.init()
        entries.reserveCapacity(prefix.count + rest.count)
        for (key, value) in prefix { appendNew(key, value) }
        for entry in rest.entries where !prefix.contains(where: { sameKey($0.0, entry.key) }) {
            appendNew(entry.key, entry.value)
        }
    }

    /// An object from a literal; a later duplicate key replaces the earlier value in place.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements)
    }

    /// The number of keys.
    @inlinable public var count: Int { entries.count }

    /// Whether the object has no keys.
    @inlinable public var isEmpty: Bool { entries.isEmpty }

    /// The keys in order.
    public var keys: [String] { entries.map(\.key) }

    /// The value for `key`, or nil.
    ///
    /// Setting a value replaces an existing key in place (its position is kept) or appends a
    /// new key at the end; setting nil removes the key.
    public subscript(key: String) -> JSONValue? {
        get {
            guard let i = position(of: key) else { return nil }
            return entries[i].value
        }
        set {
            if let newValue {
                if let i = position(of: key) {
                    entries[i].value = newValue
                } else {
                    appendNew(key, newValue)
                }
            } else {
                _ = removeValue(forKey: key)
            }
        }
    }

    /// Removes `key` and returns its value, or nil if it was absent. Later keys keep their order.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let i = position(of: key) else { return nil }
        let removed = entries.remove(at: i).value
        if index != nil {
            if entries.count <= Self.indexThreshold / 2 {
                index = nil  // Small again: linear search is cheaper than keeping the index.
            } else {
                index![JSONKey(key)] = nil
                for j in i..<entries.count { index![JSONKey(entries[j].key)] = j }
            }
        }
        return removed
    }

    /// Appends `key`, which the caller knows is not in the object yet (say, a key of a Lua table
    /// being read): no key is compared, which `self[key] = value` does with every key.
    public mutating func append(uniqueKey key: String, _ value: JSONValue) {
        assert(position(of: key) == nil, "append(uniqueKey:) with a key already present")
        appendNew(key, value)
    }

    /// Top-level merge: each of `other`'s keys overwrites in place or is appended, in `other`'s order.
    public mutating func merge(_ other: JSONObject) {
        for entry in other.entries { self[entry.key] = entry.value }
    }

    /// Iterates `(key, value)` pairs in order.
    public struct Iterator: IteratorProtocol {
        @usableFromInline internal var base: IndexingIterator<[Entry]>

        @inlinable internal init(_ base: IndexingIterator<[Entry]>) { self.base = base }

        @inlinable public mutating func next() -> Element? {
            guard let entry = base.next() else { return nil }
            return (key: entry.key, value: entry.value)
        }
    }

    /// Iterates `(key, value)` pairs in order.
    @inlinable public func makeIterator() -> Iterator { Iterator(entries.makeIterator()) }

    @inlinable public var underestimatedCount: Int { entries.count }

    /// Same keys with equal values, in any order.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.entries.count == rhs.entries.count else { return false }
        // Keys are unique on both sides, so equal counts + every lhs entry found equal in rhs
        // means the key sets are the same.
        for (i, entry) in lhs.entries.enumerated() {
            // Same position first: objects compared for equality usually share their order.
            if i < rhs.entries.count, sameKey(rhs.entries[i].key, entry.key) {
                if rhs.entries[i].value != entry.value { return false }
                continue
            }
            guard let j = rhs.position(of: entry.key), rhs.entries[j].value == entry.value else { return false }
        }
        return true
    }

    /// Appends compact JSON for this object to `buffer`.
    public func write(into buffer: inout [UInt8]) {
        ByteSink.appending(to: &buffer) { $0.writeObject(self) }
    }

    /// Compact JSON (no spaces), keys in object order.
    public func serialized() -> [UInt8] {
        ByteSink.bytes { $0.writeObject(self) }
    }

    // MARK: - Internals

    @inline(__always)
    internal func position(of key: String) -> Int? {
        if let index { return index[JSONKey(key)] }
        var i = 0
        let n = entries.count
        while i < n {
            if sameKey(entries[i].key, key) { return i }
            i &+= 1
        }
        return nil
    }

    @inline(__always)
    internal mutating func appendNew(_ key: String, _ value: JSONValue) {
        entries.append(Entry(key: key, value: value))
        if index != nil {
            index![JSONKey(key)] = entries.count - 1
        } else if entries.count > Self.indexThreshold {
            buildIndex()
        }
    }

    internal mutating func buildIndex() {
        var built = [JSONKey: Int](minimumCapacity: entries.count)
        for (i, entry) in entries.enumerated() { built[JSONKey(entry.key)] = i }
        index = built
    }

    /// Used by the parser. `hasDuplicates` is the parser's verdict for small objects; large
    /// ones (which the parser does not check) are checked here while building the index.
    /// A later duplicate replaces the earlier value in place.
    internal init(parsedEntries: [Entry], hasDuplicates: Bool) {
        entries = parsedEntries
        index = nil
        let n = parsedEntries.count
        if !hasDuplicates {
            if n <= Self.indexThreshold { return }
            var built = [JSONKey: Int](minimumCapacity: n)
            var unique = true
            for i in 0..<n where built.updateValue(i, forKey: JSONKey(parsedEntries[i].key)) != nil {
                unique = false
                break
            }
            if unique {
                index = built
                return
            }
        }
        entries = []
        entries.reserveCapacity(n)
        for entry in parsedEntries { self[entry.key] = entry.value }
    }
}

/// Key equality by UTF-8 bytes. Lengths first: most distinct keys differ in length, and
/// `utf8.count` is read straight from the string's header.
@inline(__always)
internal func sameKey(_ a: String, _ b: String) -> Bool {
    guard a.utf8.count == b.utf8.count else { return false }
    return sameKeyBytes(a, b)
}

internal func sameKeyBytes(_ a: String, _ b: String) -> Bool {
    withUTF8Bytes(of: a) { pa in
        withUTF8Bytes(of: b) { pb in
            guard pa.count == pb.count else { return false }
            var i = 0
            let n = pa.count
            while i < n {
                if pa[i] != pb[i] { return false }
                i &+= 1
            }
            return true
        }
    }
}

/// The UTF-8 of `s` as a buffer: direct for native strings, one copy for bridged ones.
@inline(__always)
internal func withUTF8Bytes<R>(of s: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    if let result = s.utf8.withContiguousStorageIfAvailable(body) { return result }
    var copy = s
    copy.makeContiguousUTF8()
    return copy.withUTF8(body)
}

/// A dictionary key that hashes and compares a String by its UTF-8 bytes (see `sameKey`).
internal struct JSONKey: Hashable, Sendable {
    let string: String

    @inline(__always) init(_ string: String) { self.string = string }

    static func == (lhs: JSONKey, rhs: JSONKey) -> Bool { sameKey(lhs.string, rhs.string) }

    func hash(into hasher: inout Hasher) {
        withUTF8Bytes(of: string) { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
