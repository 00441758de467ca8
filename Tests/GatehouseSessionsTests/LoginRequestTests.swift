import XCTest
@testable import GatehouseSessions

final class LoginRequestTests: XCTestCase {
    private let form = "application/x-www-form-urlencoded"

    private func parse(_ contentType: String?, _ body: String) -> LoginRequest? {
        LoginRequest.parse(contentType: contentType, body: Array(body.utf8))
    }

    func testFormBodiesAreDecodedAsTheTableSays() {
        let table: [(description: String, body: String, user: String, password: String)] = [
            ("plain", "username=alice&password=secret", "alice", "secret"),
            ("plus is a space", "username=alice+smith&password=correct+horse", "alice smith", "correct horse"),
            ("percent escapes, either case", "username=al%69ce&password=p%40ss%2bw%C3%b6rd%26%3D", "alice", "p@ss+wörd&="),
            ("encoded plus stays a plus", "username=a&password=%2B%2B", "a", "++"),
            ("order does not matter", "password=secret&username=alice", "alice", "secret"),
            ("other fields are ignored", "csrf=x&username=alice&remember=on&password=secret&submit", "alice", "secret"),
            ("empty pairs are skipped", "&&username=alice&&password=secret&", "alice", "secret"),
            ("empty password", "username=alice&password=", "alice", ""),
            ("escaped field names", "user%6Eame=alice&pass%77ord=secret", "alice", "secret"),
            ("long other fields", "g-recaptcha-response-and-more=\(String(repeating: "z", count: 3000))&username=a&password=b", "a", "b"),
        ]
        for row in table {
            let parsed = parse(form, row.body)
            XCTAssertEqual(parsed?.username, row.user, row.description)
            XCTAssertEqual(parsed?.password, Array(row.password.utf8), row.description)
        }
    }

    func testFormPasswordKeepsBytesThatAreNotUTF8() {
        XCTAssertEqual(parse(form, "username=alice&password=%FF%00x")?.password, [0xFF, 0x00, UInt8(ascii: "x")])
    }

    func testJSONBodiesAreDecoded() {
        let table: [(description: String, body: String, user: String, password: String)] = [
            ("plain", #"{"username":"alice","password":"secret"}"#, "alice", "secret"),
            ("escapes", #"{"password":"p\"\\\u00e9\ud83d\udd10","username":"al\u0069ce"}"#, "alice", "p\"\\é🔐"),
            ("extra members", #"{"username":"alice","password":"s","remember":true,"n":{"a":[1]}}"#, "alice", "s"),
            ("whitespace", " {\n \"username\" : \"alice\" ,\t\"password\":\"s\" } ", "alice", "s"),
        ]
        for row in table {
            let parsed = parse("application/json", row.body)
            XCTAssertEqual(parsed?.username, row.user, row.description)
            XCTAssertEqual(parsed?.password, Array(row.password.utf8), row.description)
        }
    }

    func testContentTypeIsMatchedOnItsMediaType() {
        XCTAssertNotNil(parse("Application/X-WWW-Form-URLEncoded; charset=UTF-8", "username=a&password=b"))
        XCTAssertNotNil(parse("application/json;charset=utf-8", #"{"username":"a","password":"b"}"#))
        XCTAssertNotNil(parse(" application/json ", #"{"username":"a","password":"b"}"#))
        XCTAssertNil(parse(nil, "username=a&password=b"))
        XCTAssertNil(parse("text/plain", "username=a&password=b"))
        XCTAssertNil(parse("multipart/form-data; boundary=x", "username=a&password=b"))
        XCTAssertNil(parse("application/json", "username=a&password=b"))
        XCTAssertNil(parse(form, #"{"username":"a","password":"b"}"#))
    }

    func testGarbageAndMissingFieldsAreRefused() {
        let forms: [(String, String)] = [
            ("empty body", ""), ("no password", "username=alice"), ("no username", "password=x"),
            ("empty username", "username=&password=x"), ("repeated username", "username=a&username=b&password=x"),
            ("repeated password", "username=a&password=x&password=y"), ("bad escape", "username=a%zz&password=x"),
            ("truncated escape", "username=a&password=x%4"), ("username not UTF-8", "username=%FF&password=x"),
            ("control character in username", "username=a%0Ab&password=x"), ("NUL in username", "username=a%00&password=x"),
        ]
        for (description, body) in forms { XCTAssertNil(parse(form, body), description) }
        let jsons: [(String, String)] = [
            ("not JSON", "username=a&password=b"), ("truncated", #"{"username":"a","password":"#),
            ("array", #"["a","b"]"#), ("number password", #"{"username":"a","password":1234}"#),
            ("null username", #"{"username":null,"password":"x"}"#), ("missing password", #"{"username":"a"}"#),
            ("empty username", #"{"username":"","password":"x"}"#), ("control character", #"{"username":"a\nb","password":"x"}"#),
            ("empty", ""),
        ]
        for (description, body) in jsons { XCTAssertNil(parse("application/json", body), description) }
    }

    func testSizesAreBounded() {
        let user256 = String(repeating: "u", count: 256)
        let password1024 = String(repeating: "p", count: 1024)
        XCTAssertNotNil(parse(form, "username=\(user256)&password=\(password1024)"))
        XCTAssertNil(parse(form, "username=\(user256)u&password=x"), "username over 256 bytes")
        XCTAssertNil(parse(form, "username=a&password=\(password1024)p"), "password over 1024 bytes")
        XCTAssertNil(parse(form, "username=a&password=" + String(repeating: "%41", count: 1025)), "counted after decoding")
        XCTAssertNotNil(parse(form, "username=a&password=" + String(repeating: "%41", count: 1024)))
        XCTAssertNil(parse("application/json", #"{"username":"a","password":"\#(password1024)p"}"#))
        XCTAssertNil(parse("application/json", #"{"username":"\#(user256)u","password":"x"}"#))
        let huge = "username=a&password=b&pad=" + String(repeating: "x", count: LoginRequest.maxBodyBytes)
        XCTAssertNil(parse(form, huge), "body over maxBodyBytes")
    }
}
