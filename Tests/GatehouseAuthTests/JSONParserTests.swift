import XCTest
@testable import GatehouseAuth

final class JSONParserTests: XCTestCase {
    func testValidDocumentsParseToTheirValues() throws {
        let table: [(name: String, json: String, value: JSONValue)] = [
            ("empty object", "{}", [:]),
            ("whitespace everywhere", " {\r\n\t\"a\" : [ 1 , 2 ] } ", ["a": [1, 2]]),
            ("literals", #"[true,false,null]"#, [true, false, nil]),
            ("integers stay exact", "[9007199254740993, -9223372036854775808]",
             .array([.number(JSONNumber(Int64(9_007_199_254_740_993))), .number(JSONNumber(Int64.min))])),
            ("integer beyond Int64 becomes a double", "18446744073709551616", .number(JSONNumber(18_446_744_073_709_551_616.0))),
            ("fraction and exponent", "[1.5, -2e3, 0.25E+1]", [1.5, -2000, 2.5]),
            ("minus zero", "-0", 0),
            ("escapes", #""a\"b\\c\/d\b\f\n\r\t""#, .string("a\"b\\c/d\u{8}\u{c}\n\r\t")),
            ("unicode escape", #""caf\u00e9 \u20AC""#, "café €"),
            ("surrogate pair", #""\ud83d\ude00""#, "😀"),
            ("raw UTF-8", "\"grüße 😀\"", "grüße 😀"),
            ("escaped NUL", #""a\u0000b""#, .string("a\u{0}b")),
            ("nested 32 deep", String(repeating: "[", count: 32) + String(repeating: "]", count: 32),
             (0..<31).reduce(JSONValue.array([])) { inner, _ in .array([inner]) }),
        ]
        for row in table {
            XCTAssertEqual(try JSONParser.parse(row.json), row.value, row.name)
        }
    }

    func testInvalidDocumentsAreRefusedWithTheReason() {
        let table: [(name: String, json: [UInt8], message: String)] = [
            ("empty", [], "unexpected end of JSON"),
            ("trailing garbage", Array(#"{"a":1}x"#.utf8), "unexpected characters after the JSON value"),
            ("two values", Array("{} {}".utf8), "unexpected characters after the JSON value"),
            ("duplicate member", Array(#"{"a":1,"b":2,"a":3}"#.utf8), #"duplicate member name "a""#),
            ("duplicate member in a large object",
             Array(("{" + (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + ",\"k7\":0}").utf8),
             #"duplicate member name "k7""#),
            ("duplicate after unescaping", Array(#"{"alg":1,"\u0061lg":2}"#.utf8), #"duplicate member name "alg""#),
            // A name's control characters are escaped in the message (it reaches the logs).
            ("duplicate with a newline", Array(#"{"a\nb":1,"a\nb":2}"#.utf8), #"duplicate member name "a\nb""#),
            ("33 deep", Array((String(repeating: "[", count: 33) + String(repeating: "]", count: 33)).utf8),
             "nesting deeper than 32"),
            ("33 deep objects", Array((String(repeating: #"{"a":"#, count: 33) + "1" + String(repeating: "}", count: 33)).utf8),
             "nesting deeper than 32"),
            ("lone high surrogate", Array(#""\ud83d""#.utf8), "unpaired surrogate in a string"),
            ("high surrogate then letter", Array(#""\ud83dx""#.utf8), "unpaired surrogate in a string"),
            ("lone low surrogate", Array(#""\ude00""#.utf8), "unpaired surrogate in a string"),
            ("two high surrogates", Array(#""\ud83d\ud83d""#.utf8), "unpaired surrogate in a string"),
            ("raw control character", Array("\"a\nb\"".utf8), "control character in a string"),
            ("invalid UTF-8", [0x22, 0xC3, 0x28, 0x22], "invalid UTF-8 in a string"),
            ("overlong UTF-8", [0x22, 0xC0, 0xAF, 0x22], "invalid UTF-8 in a string"),
            ("bad escape", Array(#""\x41""#.utf8), "invalid escape in a string"),
            ("short unicode escape", Array(#""\u12""#.utf8), "invalid \\u escape"),
            ("unterminated string", Array(#""abc"#.utf8), "unterminated string"),
            ("leading zero", Array("012".utf8), "leading zero in a number"),
            ("leading plus", Array("+1".utf8), "unexpected character '+'"),
            ("bare fraction", Array("1.".utf8), "invalid number"),
            ("bare exponent", Array("1e".utf8), "invalid number"),
            ("infinite number", Array("1e400".utf8), "number out of range"),
            ("NaN", Array("NaN".utf8), "unexpected character 'N'"),
            ("single quotes", Array("{'a':1}".utf8), "expected a member name"),
            ("trailing comma", Array("[1,]".utf8), "unexpected character ']'"),
            ("trailing comma in object", Array(#"{"a":1,}"#.utf8), "expected a member name"),
            ("missing colon", Array(#"{"a" 1}"#.utf8), "expected ':'"),
            ("unclosed object", Array(#"{"a":1"#.utf8), "unexpected end of JSON in an object"),
            ("misspelled literal", Array("tru".utf8), "unexpected end of JSON"),
            ("comment", Array("// x\n{}".utf8), "unexpected character '/'"),
        ]
        for row in table {
            XCTAssertThrowsError(try JSONParser.parse(row.json), row.name) { error in
                XCTAssertEqual((error as? JSONParseError)?.message, row.message, row.name)
            }
        }
    }

    func testErrorsSayWhereTheyAre() {
        XCTAssertThrowsError(try JSONParser.parse(#"{"keys": [1,, 2]}"#)) { error in
            XCTAssertEqual("\(error)", "unexpected character ',' at byte 12")
        }
    }

    func testNumbersCompareNumerically() {
        XCTAssertEqual(JSONValue(integerLiteral: 7), JSONValue(floatLiteral: 7.0))
        XCTAssertEqual(try JSONParser.parse("7.0"), try JSONParser.parse("7"))
        XCTAssertEqual(try JSONParser.parse("7e0"), 7)
        XCTAssertNotEqual(try JSONParser.parse("7.5"), 7)
        XCTAssertNotEqual(try JSONParser.parse("9007199254740993"), try JSONParser.parse("9007199254740992"))
        XCTAssertEqual(JSONNumber(1.5).ceilingSeconds, 2)
        XCTAssertEqual(JSONNumber(-1.5).ceilingSeconds, -1)
        XCTAssertEqual(JSONNumber(1e300).ceilingSeconds, 1 << 52)
    }

    func testObjectEqualityIgnoresMemberOrder() throws {
        XCTAssertEqual(try JSONParser.parse(#"{"a":1,"b":[2]}"#), try JSONParser.parse(#"{"b":[2],"a":1}"#))
        XCTAssertNotEqual(try JSONParser.parse(#"{"a":1}"#), try JSONParser.parse(#"{"a":1,"b":2}"#))
    }

    func testDottedPathsPreferWholeMemberNames() throws {
        let claims = try JSONParser.parse(#"""
            {"realm_access": {"roles": ["nested"]}, "org.id": 7, "org": {"id": 8},
             "a": {"b.c": {"d": 1}}, "x.y": {"z": 2}, "x": {"y": {"z": 3}}}
            """#)
        let table: [(path: String, value: JSONValue?)] = [
            ("realm_access.roles", ["nested"]),
            ("org.id", 7),
            ("a.b.c.d", 1),
            ("x.y.z", 2),
            ("missing", nil),
            ("realm_access.missing", nil),
            ("org.id.more", nil),
            ("realm_access.", nil),
            (".", nil),
        ]
        for row in table {
            XCTAssertEqual(claims.value(atPath: row.path), row.value, row.path)
        }
    }
}

final class Base64URLTests: XCTestCase {
    func testCanonicalUnpaddedBase64URLDecodes() {
        let table: [(text: String, bytes: [UInt8])] = [
            ("", []),
            ("AA", [0]),
            ("AAE", [0, 1]),
            ("AAEC", [0, 1, 2]),
            ("-_8", [0xFB, 0xFF]),
            ("UGF5bG9hZA", Array("Payload".utf8)),
        ]
        for row in table {
            XCTAssertEqual(Base64URL.decode(row.text), row.bytes, row.text)
        }
    }

    func testAnythingElseIsRefused() {
        let table: [(name: String, text: String)] = [
            ("padding", "AA=="),
            ("single padding", "AAE="),
            ("standard alphabet plus", "+_8"),
            ("standard alphabet slash", "-/8"),
            ("whitespace", "AA E"),
            ("newline", "AAEC\n"),
            ("one leftover character", "AAECA"),
            ("non-zero trailing bits in 2", "AB"),
            ("non-zero trailing bits in 3", "AAF"),
            ("non-ASCII", "AAé"),
            ("dot", "AA.A"),
        ]
        for row in table {
            XCTAssertNil(Base64URL.decode(row.text), row.name)
        }
    }

    func testRoundTripsEveryLength() {
        for length in 0..<70 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            XCTAssertEqual(Base64URL.decode(TestTokens.base64URL(bytes)), bytes, "length \(length)")
        }
    }
}
