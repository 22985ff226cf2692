import Testing
@testable import MoonbaseJSON

@Suite("JSONObject")
struct ObjectTests {
    @Test func emptyObject() {
        let o = JSONObject()
        #expect(o.isEmpty)
        #expect(o.count == 0)
        #expect(o.keys == [])
        #expect(o["missing"] == nil)
        #expect(Array(o).isEmpty)
        #expect(o == [:])
    }

    @Test func literalKeepsOrder() {
        let o: JSONObject = ["b": .int(1), "a": .int(2), "c": .null]
        #expect(o.keys == ["b", "a", "c"])
        #expect(o.count == 3)
        #expect(!o.isEmpty)
        #expect(o["a"] == .int(2))
        #expect(o["c"] == .null)
        #expect(o["d"] == nil)
    }

    @Test func pairsWithDuplicatesReplaceInPlace() {
        let o = JSONObject([("a", .int(1)), ("b", .int(2)), ("a", .int(3)), ("c", .int(4)), ("b", .int(5))])
        #expect(o.keys == ["a", "b", "c"])
        #expect(o["a"] == .int(3))
        #expect(o["b"] == .int(5))
        let literal: JSONObject = ["x": .int(1), "x": .int(2)]
        #expect(literal.keys == ["x"])
        #expect(literal["x"] == .int(2))
    }

    @Test func subscriptSetReplacesInPlaceAndAppendsNewKeys() {
        var o: JSONObject = ["a": .int(1), "b": .int(2), "c": .int(3)]
        o["b"] = .string("two")
        #expect(o.keys == ["a", "b", "c"])
        #expect(o["b"] == .string("two"))
        o["d"] = .bool(true)
        #expect(o.keys == ["a", "b", "c", "d"])
        // Setting null stores JSON null; setting nil removes.
        o["a"] = .null
        #expect(o["a"] == .null)
        #expect(o.count == 4)
        o["a"] = nil
        #expect(o.keys == ["b", "c", "d"])
        o["zzz"] = nil
        #expect(o.count == 3)
    }

    @Test func removeValue() {
        var o: JSONObject = ["a": .int(1), "b": .int(2), "c": .int(3)]
        #expect(o.removeValue(forKey: "b") == .int(2))
        #expect(o.keys == ["a", "c"])
        #expect(o.removeValue(forKey: "b") == nil)
        #expect(o.removeValue(forKey: "a") == .int(1))
        #expect(o.removeValue(forKey: "c") == .int(3))
        #expect(o.isEmpty)
    }

    @Test func mergeOverwritesInPlaceAndAppends() {
        var o: JSONObject = ["id": .string("x"), "title": .string("old"), "n": .int(1)]
        o.merge(["title": .string("new"), "extra": .bool(true), "n": .object(["deep": .null])])
        #expect(o.keys == ["id", "title", "n", "extra"])
        #expect(o["title"] == .string("new"))
        #expect(o["n"] == .object(["deep": .null]))  // top-level: replaced, not merged recursively
        #expect(o["extra"] == .bool(true))
        var empty = JSONObject()
        empty.merge(o)
        #expect(empty.keys == o.keys)
        o.merge(JSONObject())
        #expect(o.count == 4)
    }

    @Test func prefixThenRestSkipsTheRestsCopiesOfPrefixKeys() {
        let rest: JSONObject = ["b": 1, "id": "shadow", "c": 2]
        let o = JSONObject(prefix: [("id", "x"), ("kind", "post")], then: rest)
        #expect(o.keys == ["id", "kind", "b", "c"])
        #expect(o["id"] == "x" && o["c"] == 2)

        // Past the size where lookups switch to a hash index, the index knows every key.
        let many = JSONObject((0..<40).map { ("k\($0)", JSONValue.int(Int64($0))) })
        let big = JSONObject(prefix: [("k3", "first"), ("z", .null)], then: many)
        #expect(big.count == 41 && big.keys.prefix(3) == ["k3", "z", "k0"])
        #expect(big["k3"] == "first" && big["k39"] == 39 && big["z"] == .null)
    }

    @Test func sequenceYieldsPairsInOrder() {
        let o: JSONObject = ["z": .int(26), "a": .int(1), "m": .int(13)]
        var seen: [String] = []
        var values: [JSONValue] = []
        for (key, value) in o {
            seen.append(key)
            values.append(value)
        }
        #expect(seen == ["z", "a", "m"])
        #expect(values == [.int(26), .int(1), .int(13)])
        #expect(o.map(\.key) == ["z", "a", "m"])
        #expect(o.map(\.value) == values)
        #expect(o.underestimatedCount == 3)
    }

    @Test func equalityIgnoresOrder() {
        let a: JSONObject = ["x": .int(1), "y": .array([.int(1), .int(2)]), "z": .object(["p": .null, "q": .bool(true)])]
        let b: JSONObject = ["z": .object(["q": .bool(true), "p": .null]), "x": .int(1), "y": .array([.int(1), .int(2)])]
        #expect(a == b)
        #expect(JSONValue.object(a) == JSONValue.object(b))
        // But arrays are ordered, values must match, and key sets must match.
        let c: JSONObject = ["x": .int(1), "y": .array([.int(2), .int(1)]), "z": .object(["p": .null, "q": .bool(true)])]
        #expect(a != c)
        var d = a
        d["x"] = .double(1)
        #expect(a != d)
        var e = a
        e["w"] = .null
        #expect(a != e)
        var f = a
        f["x"] = nil
        f["x2"] = .int(1)
        #expect(a != f)
    }

    @Test func keysCompareByBytes() {
        var o = JSONObject()
        o["\u{E9}"] = .int(1)      // é, precomposed
        o["e\u{301}"] = .int(2)    // e + combining acute: canonically equivalent, different bytes
        #expect(o.count == 2)
        #expect(o["\u{E9}"] == .int(1))
        #expect(o["e\u{301}"] == .int(2))
        #expect(o.removeValue(forKey: "e\u{301}") == .int(2))
        #expect(o.keys == ["\u{E9}"])
    }

    @Test func largeObjectsStayConsistentWithAModel() {
        // Random operations against a simple ordered model, crossing the hash-index threshold
        // in both directions.
        var rng = SplitMix64(seed: 99)
        var o = JSONObject()
        var model: [(String, JSONValue)] = []
        for step in 0..<5_000 {
            let key = "k\(rng.next() % 48)"
            let value = JSONValue.int(Int64(step))
            switch rng.next() % 10 {
            case 0..<6:
                o[key] = value
                if let i = model.firstIndex(where: { $0.0 == key }) { model[i].1 = value } else { model.append((key, value)) }
            case 6..<9:
                let removed = o.removeValue(forKey: key)
                let i = model.firstIndex(where: { $0.0 == key })
                #expect(removed == i.map { model[$0].1 })
                if let i { model.remove(at: i) }
            default:
                o.merge(JSONObject([(key, value), ("k0", .null)]))
                for (k, v) in [(key, value), ("k0", JSONValue.null)] {
                    if let i = model.firstIndex(where: { $0.0 == k }) { model[i].1 = v } else { model.append((k, v)) }
                }
            }
            #expect(o.keys == model.map(\.0))
            for probe in 0..<48 where rng.next() % 8 == 0 {
                let k = "k\(probe)"
                #expect(o[k] == model.first(where: { $0.0 == k })?.1)
            }
        }
    }

    @Test func largeObjectEquality() {
        var a = JSONObject()
        var b = JSONObject()
        for i in 0..<100 { a["key\(i)"] = .int(Int64(i)) }
        for i in (0..<100).reversed() { b["key\(i)"] = .int(Int64(i)) }
        #expect(a == b)
        b["key50"] = .int(-1)
        #expect(a != b)
    }

    @Test func valueLiterals() throws {
        // JSONValueLiterals.swift: literals build the same values as the explicit cases.
        let value: JSONValue = ["title": "Hello", "views": 3, "rating": 4.5, "ok": true, "tags": ["a", 1], "none": .null]
        let explicit: JSONValue = .object([
            "title": .string("Hello"), "views": .int(3), "rating": .double(4.5), "ok": .bool(true),
            "tags": .array([.string("a"), .int(1)]), "none": .null,
        ])
        #expect(value == explicit)
        #expect(value.serializedString() == #"{"title":"Hello","views":3,"rating":4.5,"ok":true,"tags":["a",1],"none":null}"#)
        #expect(try object(value)["views"] == 3)
    }

    @Test func serializesInOrder() {
        let o: JSONObject = ["z": .int(1), "a": .string("x"), "m": .array([])]
        #expect(String(decoding: o.serialized(), as: UTF8.self) == #"{"z":1,"a":"x","m":[]}"#)
        var buffer = Array("prefix:".utf8)
        o.write(into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == #"prefix:{"z":1,"a":"x","m":[]}"#)
        #expect(JSONObject().serialized() == Array("{}".utf8))
    }
}
