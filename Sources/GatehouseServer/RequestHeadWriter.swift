import Glibc

/// Bytes of an upstream request head (request line and header lines), appended without
/// intermediate Strings. Header values with CR or LF are left out rather than sent broken
/// (evhttp's `evhttp_add_header` refused them the same way).
struct RequestHeadWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func append(_ text: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// `name: value` CRLF, from evhttp's NUL-terminated header strings (already validated).
    mutating func header(_ name: UnsafePointer<CChar>, _ value: UnsafePointer<CChar>) {
        appendC(name)
        bytes.append(UInt8(ascii: ":"))
        bytes.append(UInt8(ascii: " "))
        appendC(value)
        bytes.append(13)
        bytes.append(10)
    }

    mutating func header(_ name: String, _ value: String) {
        var value = value
        let clean = value.withUTF8 { !$0.contains(13) && !$0.contains(10) }
        guard clean else { return }
        append(name)
        bytes.append(UInt8(ascii: ":"))
        bytes.append(UInt8(ascii: " "))
        append(value)
        bytes.append(13)
        bytes.append(10)
    }

    private mutating func appendC(_ text: UnsafePointer<CChar>) {
        let count = strlen(text)
        text.withMemoryRebound(to: UInt8.self, capacity: count) {
            bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: count))
        }
    }
}
