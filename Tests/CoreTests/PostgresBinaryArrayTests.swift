import Core
import Foundation
import PostgresNIO
import TestSupport
import Testing

/// Arrays written in the binary format arrive in PostgreSQL as the values they hold, and
/// equal to the same values bound through postgres-nio's own encoders.
@Suite struct PostgresBinaryArrayTests {
    @Test func everyElementTypeRoundTrips() async throws {
        try await withTestDatabase { client, _ in
            let texts = ["plain", "é 😀", "", String(repeating: "x", count: 70_000), #"{"a": [1, "\""]}"#]
            let ids = [UUID(), UUID(), UUID()]
            let times = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_795_600_000.123456), Date(timeIntervalSince1970: 946_684_799.5)]
            var textArray = PostgresBinaryArray<String>(), idArray = PostgresBinaryArray<UUID>()
            var boolArray = PostgresBinaryArray<Bool>(), intArray = PostgresBinaryArray<Int32>()
            var timeArray = PostgresBinaryArray<Date>()
            texts.forEach { textArray.append($0) }
            ids.forEach { idArray.append($0) }
            [true, false, true].forEach { boolArray.append($0) }
            [Int32.min, 0, 42, Int32.max].forEach { intArray.append($0) }
            times.forEach { timeArray.append($0) }
            let row = try await client.query(
                """
                SELECT \(textArray) = \(texts), \(idArray) = \(ids), \(boolArray) = ARRAY[true, false, true],
                       \(intArray) = \(["-2147483648", "0", "42", "2147483647"])::int4[], \(timeArray) = \(times),
                       cardinality(\(textArray)), octet_length((\(textArray))[4])
                """
            ).collect().first?.decode((Bool, Bool, Bool, Bool, Bool, Int32, Int32).self)
            #expect(row?.0 == true && row?.1 == true && row?.2 == true && row?.3 == true && row?.4 == true)
            #expect(row?.5 == 5 && row?.6 == 70_000)
        }
    }

    @Test func emptyArraysAreEmpty() async throws {
        try await withTestDatabase { client, _ in
            let row = try await client.query(
                "SELECT cardinality(\(PostgresBinaryArray<String>())), \(PostgresBinaryArray<UUID>()) = '{}'::uuid[]"
            ).collect().first?.decode((Int32, Bool).self)
            #expect(row?.0 == 0 && row?.1 == true)
        }
    }
}
