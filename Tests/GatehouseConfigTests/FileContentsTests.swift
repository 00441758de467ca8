import XCTest
@testable import GatehouseConfig

/// SPEC §3.2: a config or policy file is read only when it is a regular file within the limit.
final class FileContentsTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-fc-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func write(_ name: String, bytes count: Int) -> String {
        let path = "\(directory)/\(name)"
        _ = FileManager.default.createFile(atPath: path, contents: Data(repeating: 0x61, count: count))
        return path
    }

    func testAFileOfExactlyTheLimitIsReadAndOneByteMoreIsRefused() {
        XCTAssertEqual(try FileContents.bytes(write("ten", bytes: 10), limit: 10).get().count, 10)
        switch FileContents.bytes(write("eleven", bytes: 11), limit: 10) {
        case .success: XCTFail("11 bytes read with a 10-byte limit")
        case .failure(let error): XCTAssertTrue(error.message.contains("11 bytes"), error.message)
        }
        XCTAssertEqual(try FileContents.bytes(write("empty", bytes: 0), limit: 10).get(), [])
    }

    func testAFIFOIsRefusedWithoutWaitingForAWriter() {
        let path = "\(directory)/fifo"
        XCTAssertEqual(mkfifo(path, 0o600), 0)
        switch FileContents.bytes(path, limit: 1 << 20) {  // would block in open(2) without O_NONBLOCK
        case .success: XCTFail("a FIFO was read")
        case .failure(let error): XCTAssertEqual(error.message, "not a regular file")
        }
    }

    func testADirectoryAndADeviceAreRefused() {
        for path in [directory, "/dev/zero"] {
            if case .success = FileContents.bytes(path, limit: 1 << 20) { XCTFail("\(path) was read") }
        }
    }

    func testWithoutALimitEverythingIsReadAsBefore() {
        XCTAssertEqual(try FileContents.bytes(write("big", bytes: 100_000)).get().count, 100_000)
    }
}
