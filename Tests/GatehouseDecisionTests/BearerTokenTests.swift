import XCTest
@testable import GatehouseDecision

/// Taking the token out of `Authorization` (RFC 6750 §2.1), byte by byte.
final class BearerTokenTests: XCTestCase {
    func testTheTokenIsTheRestAfterTheSchemeWithoutSurroundingBlanks() {
        let table: [(name: String, header: String?, token: String?)] = [
            ("no header", nil, nil),
            ("plain", "Bearer abc.def.ghi", "abc.def.ghi"),
            ("scheme in any case", "bEARER abc", "abc"),
            ("several spaces and tabs around", "Bearer  \t abc \t", "abc"),
            ("another scheme", "Basic dXNlcjpwYXNz", nil),
            ("the scheme glued to the token", "Bearerabc", nil),
            ("a longer scheme name", "Bearers abc", nil),
            ("too short", "Bear", nil),
            ("scheme alone: an empty token", "Bearer", ""),
            ("scheme and blanks: an empty token", "Bearer   ", ""),
            ("a tab right after the scheme is not a separator", "Bearer\tabc", nil),
            ("letters that only match after case folding of non-letters", "\u{2}EARER abc", nil),
            ("non-ASCII in the token is kept as it is", "Bearer é.ü.ß ", "é.ü.ß"),
            ("blanks inside the token stay", "Bearer a b", "a b"),
        ]
        for row in table {
            XCTAssertEqual(Decide.bearerToken(row.header).map(String.init), row.token, row.name)
        }
    }
}
