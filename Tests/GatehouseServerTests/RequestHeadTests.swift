import CEvhttpHook
import CLibevent
import Foundation
import GatehousePolicy
import XCTest
@testable import GatehouseServer

/// `RequestHead.problem` (the RFC 9112 framing and `Host` rules evhttp does not enforce) reads
/// each name once and compares it with the one rule name of its length. These tests hold it to
/// the rules themselves and to the earlier form of the check (a chain of comparisons per field,
/// kept below as the reference): the same verdict, and the same first problem, for every list.
final class RequestHeadTests: XCTestCase {
    private func problem(_ fields: [(String, String)], httpMinor: Int32 = 1, absoluteForm: Bool = false) -> (String?, String?) {
        let request = evhttp_request_new(nil, nil)!
        defer { evhttp_request_free(request) }
        let queue = evhttp_request_get_input_headers(request)!
        for (name, value) in fields { XCTAssertEqual(evhttp_add_header(queue, name, value), 0, name) }
        let list = HeaderList(queue)
        return (RequestHead.problem(list, httpMinor: httpMinor, absoluteForm: absoluteForm),
                Self.reference(list, httpMinor: httpMinor, absoluteForm: absoluteForm))
    }

    func testTheRulesHold() {
        let host = ("Host", "example.com:8080")
        let cases: [([(String, String)], String?)] = [
            ([host], nil),
            ([host, ("Accept", "*/*"), ("Authorization", "Bearer x")], nil),
            ([], "HTTP/1.1 without Host"),
            ([host, ("HOST", "example.com")], "several Host lines"),
            ([("Host", "a b")], "bad Host"),
            ([("Host", "")], "bad Host"),
            ([("Host", "user@example.com")], "bad Host"),
            ([host, ("Bad Name", "x")], "bad header name"),
            ([host, ("", "x")], "empty header name"),
            ([host, ("X(", "x")], "bad header name"),
            ([host, ("Content-Length", " 12 "), ("content-length", "12")], nil),
            ([host, ("Content-Length", "12"), ("Content-Length", "13")], "conflicting Content-Length"),
            ([host, ("Content-Length", "-1")], "bad Content-Length"),
            ([host, ("Content-Length", "")], "bad Content-Length"),
            ([host, ("Transfer-Encoding", " Chunked ")], nil),
            ([host, ("Transfer-Encoding", "gzip, chunked")], "unsupported Transfer-Encoding"),
            ([host, ("Transfer-Encoding", "chunked"), ("transfer-encoding", "chunked")], "unsupported Transfer-Encoding"),
            ([host, ("Authorization", "Bearer a"), ("AUTHORIZATION", "Bearer b")], "several Authorization lines"),
            ([host, ("Authorizations", "a"), ("Authorization", "b")], nil),
            ([host, ("Connection", Array(repeating: "t", count: 65).enumerated().map { "t\($0.offset)" }.joined(separator: ","))],
             "more than 64 Connection tokens"),
            ([host, ("Connection", "keep-alive, Upgrade")], nil),
            ([("Bad Name", "x"), ("Host", "a b")], "bad header name"),  // the first problem
        ]
        for (fields, expected) in cases {
            let (ours, reference) = problem(fields)
            XCTAssertEqual(ours, expected, "\(fields)")
            XCTAssertEqual(ours, reference, "\(fields)")
        }
        XCTAssertNil(problem([], httpMinor: 0).0)
        XCTAssertNil(problem([], absoluteForm: true).0)
    }

    /// 20,000 random lists of 0–6 fields, names drawn from the rule names in mixed case, their
    /// near misses (one byte more or less, same length), other names and hostile bytes; values
    /// that pass and fail each rule.
    func testRandomListsGetTheReferenceVerdict() {
        var generator = SystemRandomNumberGenerator()
        let names = ["Host", "host", "HOST", "Hosts", "Hos", "Hust", "Connection", "CONNECTION", "Connectio", "Connectiox",
                     "Authorization", "authorization", "Authorizatioo", "Authorization2", "Content-Length",
                     "content-length", "Content_Length", "Content-Lengt", "Transfer-Encoding", "transfer-encoding",
                     "Transfer-Encodinf", "Accept", "X-Forwarded-For", "", "A B", "X\u{7F}", "x:y", "X\tY", "{}",
                     "K\u{E9}", "!#$%&'*+-.^_`|~"]
        let values = ["", "0", "12", " 12\t", "-3", "1 2", "chunked", " CHUNKED ", "gzip", "chunked, chunked",
                      "example.com", "127.0.0.1:8080", "[::1]:443", "a b", "u@h", "keep-alive", "close, x, y",
                      String(repeating: "t,", count: 70), "Bearer abc", "caf\u{E9}"]
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...6, using: &generator)
            let fields = (0..<count).map { _ in
                (names.randomElement(using: &generator)!, values.randomElement(using: &generator)!)
            }
            let minor = Int32.random(in: 0...1, using: &generator)
            let absolute = Bool.random(using: &generator)
            let (ours, reference) = problem(fields, httpMinor: minor, absoluteForm: absolute)
            XCTAssertEqual(ours, reference, "\(fields) minor \(minor) absolute \(absolute)")
        }
    }

    /// The check as it was before it read each name once: every field through a closure and a
    /// chain of name comparisons, with RFC 9110's tchar list as written.
    private static let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)

    private static func reference(_ headers: HeaderList, httpMinor: Int32, absoluteForm: Bool) -> String? {
        var contentLength: String? = nil
        var transferEncodings = 0
        var transferEncodingIsChunked = false
        var hosts = 0
        var authorizations = 0
        var connectionTokens = ConnectionTokens()
        var problem: String? = nil
        headers.forEach { name, value in
            guard problem == nil else { return }
            var i = 0
            while name[i] != 0 {
                if !tchar.contains(UInt8(bitPattern: name[i])) { problem = "bad header name"; return }
                i += 1
            }
            if i == 0 { problem = "empty header name"; return }
            if HeaderRules.nameEquals(name, constant: "content-length") {
                let v = String(cString: value).trimmingCharacters(in: " \t")
                if v.isEmpty || !v.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) { problem = "bad Content-Length"; return }
                if let seen = contentLength, seen != v { problem = "conflicting Content-Length"; return }
                contentLength = v
            } else if HeaderRules.nameEquals(name, constant: "transfer-encoding") {
                transferEncodings += 1
                transferEncodingIsChunked = String(cString: value).trimmingCharacters(in: " \t").lowercased() == "chunked"
            } else if HeaderRules.nameEquals(name, constant: "host") {
                hosts += 1
                if !hostIsAcceptable(value) { problem = "bad Host"; return }
            } else if HeaderRules.nameEquals(name, constant: "authorization") {
                authorizations += 1
            } else if HeaderRules.nameEquals(name, constant: "connection") {
                connectionTokens.add(value)
            }
        }
        if let problem { return problem }
        if connectionTokens.tooMany { return "more than 64 Connection tokens" }
        if transferEncodings > 0 && (transferEncodings > 1 || !transferEncodingIsChunked) { return "unsupported Transfer-Encoding" }
        if hosts > 1 { return "several Host lines" }
        if hosts == 0 && httpMinor >= 1 && !absoluteForm { return "HTTP/1.1 without Host" }
        if authorizations > 1 { return "several Authorization lines" }
        return nil
    }

    private static func hostIsAcceptable(_ value: UnsafePointer<CChar>) -> Bool {
        let text = String(cString: value)
        return !text.isEmpty && text.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || "-.:[]_".utf8.contains(c)
        }
    }
}
