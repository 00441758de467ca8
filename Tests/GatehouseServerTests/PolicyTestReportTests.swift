import XCTest
@testable import GatehouseServer

/// The JUnit XML of `gatehouse test --junit` carries any case name (SPEC §15.1).
final class PolicyTestReportTests: XCTestCase {
    func testXMLTextEscapesMarkupAndReplacesWhatXMLCannotCarry() {
        XCTAssertEqual(XMLText.escaped("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;")
        XCTAssertEqual(XMLText.escaped("]]>"), "]]&gt;")
        XCTAssertEqual(XMLText.escaped("tab\tnl\n"), "tab&#9;nl&#10;")
        XCTAssertEqual(XMLText.escaped("nul\u{0}esc\u{1B}"), "nul\u{FFFD}esc\u{FFFD}")
        XCTAssertEqual(XMLText.escaped("é ✓"), "é ✓")
    }
}
