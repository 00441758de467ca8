import Foundation
import XCTest

/// SPEC §3: a request is decided and forwarded under the snapshot it started with. The code
/// keeps that by carrying the snapshot in `PendingRequest` through every wait; these checks read
/// the sources and fail when code that runs after a wait reads the loop's *current* snapshot
/// (`self.snapshot`, `worker.snapshot`, or a bare `snapshot` inside a `Worker` extension) — the
/// shape of the reload race of issue 9 (a route from one config, the requirement from another).
final class SnapshotDisciplineTests: XCTestCase {
    static let serverSources = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/GatehouseServer")

    static func source(_ file: String) throws -> String {
        try String(contentsOf: serverSources.appendingPathComponent(file), encoding: .utf8)
    }

    /// The text of `func name(` up to the next line that starts a declaration at the same indent.
    static func body(of name: String, in text: String) -> String? {
        guard let start = text.range(of: "func \(name)(") else { return nil }
        let rest = text[start.lowerBound...]
        let end = rest.range(of: "\n    }\n")?.upperBound ?? rest.endIndex
        return String(rest[..<end])
    }

    /// Reads of the loop's current snapshot: `self.snapshot`, `worker.snapshot`, or `snapshot`
    /// not qualified by another value (`pending.snapshot` is the request's own).
    static func currentSnapshotReads(_ text: String) -> [String] {
        let pattern = try! NSRegularExpression(pattern: #"(self\.|worker\.|(?<![.\w]))snapshot\b(?!\s*:)"#)
        var hits: [String] = []
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("//") || trimmed.hasPrefix("///") { continue }
            let s = String(line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false)[0])  // code only
            if pattern.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil,
               !s.contains("let snapshot") {
                hits.append(s.trimmingCharacters(in: .whitespaces))
            }
        }
        return hits
    }

    func testTheUpstreamSideNeverReadsTheLoopsCurrentSnapshot() throws {
        for file in ["ProxyExchange.swift", "UpstreamConnection.swift", "UpstreamPool.swift"] {
            let text = try Self.source(file)
            XCTAssertFalse(text.contains("worker.snapshot"), "\(file) reads worker.snapshot: use the exchange's own snapshot")
        }
    }

    func testContinuationsAfterAWaitUseTheRequestsOwnSnapshot() throws {
        let rows: [(file: String, function: String, allowed: [String])] = [
            ("Worker+Request.swift", "carryOut", []),
            ("Worker+Sessions.swift", "continueWithSession", []),
            ("Worker+ForwardAuth.swift", "carryOutForwardAuth", []),
            ("Worker+ForwardAuth.swift", "answerForwardAuth", []),
            ("Worker+KeyWait.swift", "waitForKeys", []),
            ("Worker+KeyWait.swift", "keysSettled", []),
            ("Worker+KeyWait.swift", "resume", []),
            // The one read: the keys known now (KeyWait.verifier keeps the request's own config).
            ("Worker+KeyWait.swift", "decideAfterKeyWait",
             ["let verifier = KeyWait.verifier(parked: pending.snapshot, current: snapshot, issuer: issuer)"]),
        ]
        for row in rows {
            let text = try Self.source(row.file)
            guard let body = Self.body(of: row.function, in: text) else {
                XCTFail("\(row.file): no func \(row.function)")
                continue
            }
            XCTAssertEqual(Self.currentSnapshotReads(body), row.allowed, "\(row.file) \(row.function)")
        }
    }

    /// The checker itself finds what it must.
    func testTheCheckerSeesCurrentSnapshotReads() {
        XCTAssertEqual(Self.currentSnapshotReads("    let config = snapshot.config\n"), ["let config = snapshot.config"])
        XCTAssertEqual(Self.currentSnapshotReads("    x(self.snapshot.config)\n"), ["x(self.snapshot.config)"])
        XCTAssertEqual(Self.currentSnapshotReads("    worker.snapshot.sessions\n"), ["worker.snapshot.sessions"])
        XCTAssertEqual(Self.currentSnapshotReads("    let c = pending.snapshot.config\n    f(snapshot: s)\n"), [])
    }
}
