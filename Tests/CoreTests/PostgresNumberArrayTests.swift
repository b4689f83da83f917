import Core
import Foundation
import PostgresNIO
import TestSupport
import Testing

/// `int8[]` and `float8[]` columns read from the binary format hold what postgres-nio's
/// own decoder reads, NULL elements left out.
@Suite struct PostgresNumberArrayTests {
    @Test func valuesMatchPostgresNIOsDecoding() async throws {
        try await withTestDatabase { client, _ in
            let row = try await client.query(
                """
                SELECT a, a, f, f FROM (SELECT ARRAY[-9223372036854775808, -1, 0, 42, 9223372036854775807]::int8[] AS a,
                                               ARRAY[-1.5, 0, 1e-300, 1e300, 'Infinity', 'NaN']::float8[] AS f) t
                """
            ).collect().first?.decode((PostgresNumberArray<Int64>, [Int64], PostgresNumberArray<Double>, [Double]).self)
            let (ints, expectedInts, doubles, expectedDoubles) = try #require(row)
            #expect(ints.elements == expectedInts)
            #expect(ints.elements == [.min, -1, 0, 42, .max])
            #expect(doubles.elements.count == 6 && doubles.elements[5].isNaN)
            #expect(Array(doubles.elements.prefix(5)) == Array(expectedDoubles.prefix(5)))
        }
    }

    @Test func emptyNullAndNullElements() async throws {
        try await withTestDatabase { client, _ in
            let row = try await client.query(
                """
                SELECT '{}'::int8[], NULL::int8[], ARRAY[1, NULL, 3]::int8[], (SELECT array_agg(x) FROM generate_series(1, 50000) x)::int8[]
                """
            ).collect().first?.decode(
                (PostgresNumberArray<Int64>, PostgresNumberArray<Int64>?, PostgresNumberArray<Int64>, PostgresNumberArray<Int64>).self)
            let (empty, null, holes, large) = try #require(row)
            #expect(empty.elements.isEmpty)
            #expect(null == nil)
            #expect(holes.elements == [1, 3])
            #expect(large.elements == Array(1...50_000))
        }
    }

    @Test func otherTypesAndShapesAreRefused() async throws {
        try await withTestDatabase { client, _ in
            for column in ["ARRAY[1, 2]::int4[]", "ARRAY[1.5]::float8[]", "ARRAY[[1, 2], [3, 4]]::int8[]", "42::int8"] {
                let row = try #require(try await client.query(PostgresQuery(unsafeSQL: "SELECT " + column)).collect().first)
                #expect(throws: (any Error).self, "\(column)") { try row.decode(PostgresNumberArray<Int64>.self) }
            }
            let row = try #require(try await client.query("SELECT ARRAY[1.5]::float8[]").collect().first)
            #expect(try row.decode(PostgresNumberArray<Double>.self).elements == [1.5])
        }
    }
}
