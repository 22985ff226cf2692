import Testing
import MoonbaseJSON
import MoonbaseModel
@testable import RecordStore

@Suite("Records")
struct RecordTests {
    /// Nested objects and arrays, every scalar kind, escapes and non-ASCII text; keys deliberately
    /// not in alphabetical order so that a store that sorts them would be caught.
    static let sampleFields: JSONObject = [
        "title": .string("Hello, \"world\"\n"),
        "zeta": .int(-42),
        "alpha": .double(0.5),
        "published": .bool(true),
        "note": .null,
        "tags": .array([.string("swift"), .string("lua"), .int(3)]),
        "meta": .object([
            "z": .int(1),
            "a": .object(["deep": .array([.int(1), .double(2.5), .null, .bool(false)])]),
        ]),
        "unicode": .string("héllo wörld 😀 — ünïcödé"),
    ]

    @Test(arguments: Engine.allCases) func crudRoundTripKeepsValuesAndOrder(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let draft = Record.new(collection: "posts", fields: Self.sampleFields)
        #expect(draft.id.count == 15)
        #expect(draft.version == 1)
        #expect(draft.created == draft.updated)

        let inserted = try await store.insert(draft).record
        #expect(inserted == draft)

        let fetched = try await store.record(collection: "posts", id: draft.id)
        #expect(fetched == draft)
        // JSONObject's == ignores order, so compare the orders explicitly, nested ones too.
        #expect(fetched.fields.keys == ["title", "zeta", "alpha", "published", "note", "tags", "meta", "unicode"])
        guard case .object(let meta)? = fetched.fields["meta"] else {
            Issue.record("meta is not an object")
            return
        }
        #expect(meta.keys == ["z", "a"])
        #expect(fetched.fields["alpha"] == .double(0.5))
        #expect(fetched.fields["zeta"] == .int(-42))
        #expect(fetched.fields.serialized() == Self.sampleFields.serialized())

        // Replace: new fields, version and `updated` move, `created` does not.
        let replaced = try await store.replace(collection: "posts", id: draft.id,
                                         fields: ["title": .string("Second"), "count": .int(2)], ifVersion: 1).record
        #expect(replaced.version == 2)
        #expect(replaced.created == draft.created)
        #expect(replaced.updated >= draft.updated)
        #expect(replaced.fields.keys == ["title", "count"])
        #expect(try await store.record(collection: "posts", id: draft.id) == replaced)

        let again = try await store.replace(collection: "posts", id: draft.id, fields: ["title": .string("Third")], ifVersion: 2).record
        #expect(again.version == 3)

        // Delete returns the record as it was, then it is gone.
        let deleted = try await store.delete(collection: "posts", id: draft.id, ifVersion: 3).record
        #expect(deleted == again)
        #expect(deleted.fields.keys == ["title"])
        #expect(await storeError { try await store.record(collection: "posts", id: draft.id) }
                == .recordNotFound(collection: "posts", id: draft.id))
        #expect(try await store.list(collection: "posts", page: 1, perPage: 30, sort: .default).totalItems == 0)
    }

    @Test(arguments: Engine.allCases) func systemFieldsInInputAreDropped(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let input: JSONObject = [
            "id": .string("mine"), "title": .string("x"), "collection": .string("other"), "created": .string("1999"),
            "updated": .int(5), "body": .string("y"),
        ]
        let draft = Record.new(collection: "posts", fields: input)
        #expect(draft.id != "mine" && draft.collection == "posts")
        #expect(draft.fields.keys == ["title", "body"])

        // A record built by hand (as a hook might) is cleaned when stored.
        let handmade = Record(id: RecordID.make(), collection: "posts", created: Timestamp.now(),
                              updated: Timestamp.now(), version: 7, fields: input)
        let stored = try await store.insert(handmade).record
        #expect(stored.fields.keys == ["title", "body"])
        #expect(stored.version == 1)  // every record starts at version 1
        #expect(try await store.record(collection: "posts", id: handmade.id).fields.keys == ["title", "body"])

        let replaced = try await store.replace(collection: "posts", id: handmade.id,
                                         fields: ["updated": .string("never"), "title": .string("z")], ifVersion: 1).record
        #expect(replaced.fields.keys == ["title"])
        #expect(replaced.updated != "never")

        #expect(draft.withFields(["id": .string("x"), "a": .int(1)]).fields.keys == ["a"])
    }

    @Test(arguments: Engine.allCases) func jsonShapeAndDirectWriterAgree(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let record = try await insert(store, "posts", Self.sampleFields)

        let json = record.json
        #expect(json.keys == ["id", "collection", "created", "updated", "title", "zeta", "alpha", "published",
                              "note", "tags", "meta", "unicode"])
        #expect(json["id"] == .string(record.id))
        #expect(json["collection"] == .string("posts"))
        #expect(json["version"] == nil)  // internal, not part of the API shape

        var buffer: [UInt8] = []
        record.write(into: &buffer)
        #expect(buffer == json.serialized())
        let parsed = try parseObject(buffer)
        #expect(parsed == json)
        #expect(parsed.keys == json.keys)

        // A record without user fields is still well-formed.
        let empty = try await insert(store, "posts", [:])
        var emptyBuffer: [UInt8] = []
        empty.write(into: &emptyBuffer)
        #expect(try parseObject(emptyBuffer).keys == ["id", "collection", "created", "updated"])
    }

    @Test(arguments: Engine.allCases) func staleVersionsAreRefused(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let original = try await insert(store, "posts", ["title": .string("v1")])
        let updated = try await store.replace(collection: "posts", id: original.id, fields: ["title": .string("v2")], ifVersion: 1).record
        #expect(updated.version == 2)

        // A second writer that read version 1 loses, and changes nothing.
        #expect(await storeError { try await store.replace(collection: "posts", id: original.id, fields: ["title": .string("lost")], ifVersion: 1).record }
                == .versionConflict(collection: "posts", id: original.id))
        #expect(await storeError { try await store.delete(collection: "posts", id: original.id, ifVersion: 1).record }
                == .versionConflict(collection: "posts", id: original.id))
        #expect(await storeError { try await store.replace(collection: "posts", id: original.id, fields: [:], ifVersion: 3).record }
                == .versionConflict(collection: "posts", id: original.id))
        #expect(try await store.record(collection: "posts", id: original.id) == updated)

        #expect(try await store.delete(collection: "posts", id: original.id, ifVersion: 2).record == updated)
    }

    @Test(arguments: Engine.allCases) func unknownCollectionsAndRecordsAreReported(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let missing = Record.new(collection: "nope", fields: ["a": .int(1)])
        #expect(await storeError { try await store.insert(missing).record } == .collectionNotFound("nope"))
        #expect(await storeError { try await store.record(collection: "nope", id: "abc") } == .collectionNotFound("nope"))
        #expect(await storeError { try await store.list(collection: "nope", page: 1, perPage: 30, sort: .default) }
                == .collectionNotFound("nope"))
        #expect(await storeError { try await store.replace(collection: "nope", id: "abc", fields: [:], ifVersion: 1).record }
                == .collectionNotFound("nope"))
        #expect(await storeError { try await store.delete(collection: "nope", id: "abc", ifVersion: 1).record }
                == .collectionNotFound("nope"))

        #expect(await storeError { try await store.record(collection: "posts", id: "abc") }
                == .recordNotFound(collection: "posts", id: "abc"))
        #expect(await storeError { try await store.replace(collection: "posts", id: "abc", fields: [:], ifVersion: 1).record }
                == .recordNotFound(collection: "posts", id: "abc"))
        #expect(await storeError { try await store.delete(collection: "posts", id: "abc", ifVersion: 1).record }
                == .recordNotFound(collection: "posts", id: "abc"))
    }

    @Test(arguments: Engine.allCases) func duplicateIDIsRefusedWithoutHarm(engine: Engine) async throws {
        let store = try await makeStore(engine)
        let first = try await insert(store, "posts", ["n": .int(1)])
        let clash = Record(id: first.id, collection: "posts", created: first.created, updated: first.updated,
                           version: 1, fields: ["n": .int(2)])
        guard case .database(let message)? = await storeError({ try await store.insert(clash).record }) else {
            Issue.record("expected a database error")
            return
        }
        #expect(message.contains("already exists"))
        #expect(try await store.record(collection: "posts", id: first.id) == first)
    }
}
