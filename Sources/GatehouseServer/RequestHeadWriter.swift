import Glibc
import GatehouseCore
import GatehousePolicy

/// Bytes of an upstream request head (request line and header lines), appended without
/// intermediate Strings.
///
/// Defence in depth for SPEC §3.2: a header line whose value holds a control byte other than
/// HTAB (CR, LF, NUL, VT, DEL, …), or whose name is empty or holds a byte that is not a token
/// character, is never written — it is left out, and `dropped` counts it. The client edge
/// already refuses such heads with 400 (Worker+RequestHeadGuard), so nothing should ever be
/// dropped here; leaving the line out keeps the head well-formed whatever a future caller
/// passes (and is what evhttp's `evhttp_add_header` did with CR and LF).
struct RequestHeadWriter {
    private(set) var bytes: [UInt8] = []
    /// Header lines left out because they could not be written safely.
    private(set) var dropped = 0

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func append(_ text: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// `traceparent: 00-…` CRLF (SPEC §15.3): the value is made of hex digits and `-` only.
    /// The line is made in place and appended at once.
    mutating func traceparent(_ trace: TraceContext) {
        let name: StaticString = "traceparent: "
        let count = name.utf8CodeUnitCount + TraceContext.length + 2
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count) { buffer in
            let line = buffer.baseAddress!
            line.update(from: name.utf8Start, count: name.utf8CodeUnitCount)
            trace.write(headerValueAt: line + name.utf8CodeUnitCount)
            line[count - 2] = 13
            line[count - 1] = 10
            bytes.append(contentsOf: UnsafeBufferPointer(buffer))
        }
    }

    /// `name: value` CRLF, from evhttp's NUL-terminated header strings.
    mutating func header(_ name: UnsafePointer<CChar>, _ value: UnsafePointer<CChar>) {
        let nameCount = strlen(name)
        let valueCount = strlen(value)
        name.withMemoryRebound(to: UInt8.self, capacity: nameCount) { name in
            value.withMemoryRebound(to: UInt8.self, capacity: valueCount) { value in
                line(UnsafeBufferPointer(start: name, count: nameCount), UnsafeBufferPointer(start: value, count: valueCount))
            }
        }
    }

    mutating func header(_ name: String, _ value: String) {
        var name = name
        var value = value
        name.withUTF8 { name in value.withUTF8 { value in line(name, value) } }
    }

    private mutating func line(_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) {
        guard RequestHeadWriter.isWritable(name: name, value: value) else {
            dropped += 1
            return
        }
        bytes.append(contentsOf: name)
        bytes.append(UInt8(ascii: ":"))
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: value)
        bytes.append(13)
        bytes.append(10)
    }

    /// A name of token characters (RFC 9110 §5.1) and a value with no control byte but HTAB.
    static func isWritable(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !name.isEmpty, name.allSatisfy(HeaderRules.isTokenByte) else { return false }
        return PlainBytes.isFieldValue(value)
    }
}
