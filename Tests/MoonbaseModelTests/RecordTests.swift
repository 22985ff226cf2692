import MoonbaseJSON
import MoonbaseModel
import Testing

@Suite("The record's one shape")
struct RecordTests {
    static let fields: JSONObject = ["title": "Hello", "id": "forged", "n": 2, "created": "1999", "tags": .array(["a"])]

    @Test func everyWayOfMakingARecordDropsTheSystemFields() {
        let fresh = Record.new(collection: "posts", fields: Self.fields)
        #expect(fresh.fields.keys == ["title", "n", "tags"])
        #expect(fresh.id != "forged" && fresh.id.utf8.count == RecordID.length)
        #expect(fresh.created == fresh.updated && fresh.version == 1)
        let changed = fresh.withFields(["updated": "never", "slug": "hello"])
        #expect(changed.fields.keys == ["slug"])
        #expect(changed.updated == fresh.updated)
        let handmade = Record(id: "x", collection: "posts", created: "c", updated: "u", version: 3, fields: Self.fields)
        #expect(handmade.fields.keys == ["title", "n", "tags"])
    }

    @Test func jsonAndTheDirectWriterGiveTheSameShape() throws {
        let record = Record(id: "abc", collection: "posts", created: "2026-12-03T00:00:00.000Z", updated: "2026-12-03T00:00:01.000Z",
                            version: 2, fields: ["title": "Hello \"quoted\"", "n": 2, "nested": .object(["id": "kept inside"])])
        #expect(record.json.keys == Record.systemFields + ["title", "n", "nested"])
        var written: [UInt8] = []
        record.write(into: &written)
        #expect(try JSONValue.parse(written) == .object(record.json))
        #expect(written == JSONValue.object(record.json).serialized())
    }

    @Test func systemFieldTestMatchesTheList() {
        for name in Record.systemFields { #expect(Record.isSystemField(name)) }
        for name in ["ID", "title", "collection_name", ""] { #expect(!Record.isSystemField(name)) }
    }
}

@Suite struct RecordEventTests {
    @Test func jsonIsTheShapeHandlersSee() {
        let update = RecordEvent(id: "evt_1", type: .updated, collection: "posts", recordID: "r1", data: ["title": "new"],
                                 oldData: ["title": "old"], timestamp: "2026-12-03T12:00:00.000Z", attempt: 3, redelivered: true)
        #expect(JSONValue.object(update.json).serializedString() == #"{"id":"evt_1","type":"record.updated","collection_name":"posts","record_id":"r1","data":{"title":"new"},"old_data":{"title":"old"},"timestamp":"2026-12-03T12:00:00.000Z"}"#)
        var create = update
        create.oldData = nil
        #expect(create.json["old_data"] == .null)
    }
}
