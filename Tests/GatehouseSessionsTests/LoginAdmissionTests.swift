import Dispatch
import XCTest
@testable import GatehouseSessions

/// At most 2 password checks per client at once, whatever the usernames (SPEC §3.2).
final class LoginAdmissionTests: XCTestCase {
    func testAClientHasAtMostTwoChecksAtOnceWhateverTheUsernames() {
        let admission = LoginAdmission()
        // The username plays no part: eight logins of eight users from one client.
        let tickets = (0..<8).map { _ in admission.admit(client: "192.0.2.7") }
        XCTAssertEqual(tickets.compactMap { $0 }.count, 2)
        XCTAssertEqual(admission.admittedCount(client: "192.0.2.7"), 2)
        XCTAssertNotNil(admission.admit(client: "192.0.2.8"), "another client is not affected")
        tickets[0]?.release()
        let again = admission.admit(client: "192.0.2.7")
        XCTAssertNotNil(again, "a released place is free again")
        XCTAssertEqual(admission.admittedCount(client: "192.0.2.7"), 2)
    }

    func testReleasingTwiceGivesBackOnePlace() {
        let admission = LoginAdmission(perClient: 2)
        let first = admission.admit(client: "c")!
        let second = admission.admit(client: "c")!
        first.release()
        first.release()
        XCTAssertEqual(admission.admittedCount(client: "c"), 1)
        let third = admission.admit(client: "c")
        XCTAssertNotNil(third)
        XCTAssertNil(admission.admit(client: "c"))
        second.release()
        third?.release()
    }

    func testADroppedTicketReleasesItself() {
        let admission = LoginAdmission()
        do {
            _ = admission.admit(client: "c")
            _ = admission.admit(client: "c")
        }
        XCTAssertEqual(admission.admittedCount(client: "c"), 0)
        XCTAssertEqual(admission.clientCount, 0, "a client is forgotten when it has no check")
    }

    func testManyClientsAreBoundedAndForgotten() {
        let admission = LoginAdmission(perClient: 2, capacity: 100)
        var held: [LoginAdmission.Ticket] = []
        for index in 0..<1000 {
            if let ticket = admission.admit(client: "2001:db8:\(String(index, radix: 16))::/64") { held.append(ticket) }
        }
        XCTAssertEqual(held.count, 100)
        XCTAssertEqual(admission.clientCount, 100)
        XCTAssertNotNil(admission.admit(client: held[0].client), "a known client still gets its second place")
        held.removeAll()
        XCTAssertEqual(admission.clientCount, 0)
        XCTAssertNotNil(admission.admit(client: "fresh"))
    }

    func testConcurrentAdmissionsNeverExceedTheLimit() {
        let admission = LoginAdmission()
        let clients = ["192.0.2.1", "2001:db8::/64", ""]
        DispatchQueue.concurrentPerform(iterations: 4000) { index in
            let client = clients[index % clients.count]
            if let ticket = admission.admit(client: client) {
                XCTAssertLessThanOrEqual(admission.admittedCount(client: client), 2)
                ticket.release()
            }
        }
        XCTAssertEqual(admission.clientCount, 0)
    }
}
