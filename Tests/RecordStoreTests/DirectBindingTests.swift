import GRDB
import Testing
@testable import RecordStore

@Suite("Direct binding")
struct DirectBindingTests {
    @Test func bindsTextIntegersAndNullsAndReportsFailuresWithTheirCodes() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, v TEXT)")
            let insert = try db.cachedStatement(sql: "INSERT INTO t (k, n, v) VALUES (?, ?, ?)")
            try insert.run { bind in
                bind.text("")
                bind.int(-7)
                bind.text(nil as String?)
            }
            try insert.run { bind in
                bind.text("é ✓")
                bind.int(nil as Int64?)
                bind.text("x\u{0}y")
            }
            let rows = try Row.fetchAll(db, sql: """
                SELECT k, typeof(k) || ' ' || typeof(n) || ' ' || typeof(v), n, length(CAST(v AS BLOB)) FROM t ORDER BY rowid
                """)
            let keys: [String] = rows.map { $0[0] }
            let types: [String] = rows.map { $0[1] }
            let numbers: [Int64?] = rows.map { $0[2] }
            let lengths: [Int?] = rows.map { $0[3] }
            #expect(keys == ["", "é ✓"])
            #expect(types == ["text integer null", "text null text"])
            #expect(numbers == [-7, nil])
            #expect(lengths == [nil, 3])

            // A refused statement throws its code and message, and the statement can run again.
            do {
                try insert.run { bind in
                    bind.text("")
                    bind.int(1)
                    bind.null()
                }
                Issue.record("a duplicate key was accepted")
            } catch let error as DatabaseError {
                #expect(error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY)
                #expect(error.message?.contains("UNIQUE constraint failed: t.k") == true)
            }
            try insert.run { bind in
                bind.text("third")
                bind.int(3)
                bind.text("v")
            }
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM t") == 3)
        }
    }

    @Test func readsTheFirstRowOrNone() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (n INTEGER, b BLOB); INSERT INTO t VALUES (5, x'00ff'), (NULL, NULL)")
            let select = try db.cachedStatement(sql: "SELECT n, b FROM t WHERE n IS ? ORDER BY rowid")
            func read(_ n: Int64?) throws -> (Int64?, [UInt8])? {
                try select.readFirstRow({ $0.int(n) }) { ($0.optionalInt(0), $0.bytes(1)) }
            }
            #expect(try read(5).map { [$0.0.map(String.init) ?? "nil", "\($0.1)"] } == ["5", "[0, 255]"])
            #expect(try read(nil).map { [$0.0.map(String.init) ?? "nil", "\($0.1)"] } == ["nil", "[]"])
            #expect(try read(7) == nil)
            // The statement is reset after a read: the table can change meanwhile.
            try db.execute(sql: "DELETE FROM t")
            #expect(try read(5) == nil)
        }
    }
}
