import Glibc
import GatehouseAuth
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
    /// Zero-filled room, written in place: `used` bytes are the head so far. (Growing an array
    /// piece by piece costs a capacity and uniqueness check per piece; this is one per line.)
    private var storage: [UInt8]
    private var used = 0
    /// Header lines left out because they could not be written safely.
    private(set) var dropped = 0

    init(capacity: Int) { storage = [UInt8](repeating: 0, count: max(capacity, 64)) }

    /// The head written so far (a copy; ``finish()`` hands the storage over).
    var bytes: [UInt8] { Array(storage[..<used]) }

    /// The head: the writer's storage and how many of its bytes are the head. (Not cut to
    /// length: `removeLast` made Swift copy the storage into a new buffer, ~1,100 instructions
    /// per proxied request.)
    consuming func finish() -> (storage: [UInt8], count: Int) {
        (storage, used)
    }

    /// Room for `count` more bytes, then `body` writes them at the pointer it is given.
    private mutating func write(_ count: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Void) {
        if used + count > storage.count {
            storage.append(contentsOf: repeatElement(0, count: max(count, storage.count)))
        }
        let at = used
        storage.withUnsafeMutableBufferPointer { body($0.baseAddress! + at) }
        used += count
    }

    private mutating func write(_ piece: UnsafeBufferPointer<UInt8>) {
        guard let base = piece.baseAddress else { return }
        write(piece.count) { $0.update(from: base, count: piece.count) }
    }

    mutating func append(_ text: StaticString) {
        write(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ text: String) {
        RequestHeadWriter.withUTF8(text) { write($0) }
    }

    /// `text`'s UTF-8 bytes in place: a native or small string's own storage, without the copy
    /// (a retain and a release) that `var`-and-`withUTF8` costs; a bridged one is made native.
    @inline(__always)
    private static func withUTF8<R>(_ text: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let result = text.utf8.withContiguousStorageIfAvailable(body) { return result }
        var text = text
        return text.withUTF8(body)
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
            write(UnsafeBufferPointer(buffer))
        }
    }

    /// `name: value` CRLF, from NUL-terminated strings (the upstream's parsed header fields).
    mutating func header(_ name: UnsafePointer<CChar>, _ value: UnsafePointer<CChar>) {
        withBytes(name, value) { writer, name, value in
            writer.line(name, value, if: RequestHeadWriter.isWritable(name: name, value: value))
        }
    }

    /// `name: value` CRLF, from evhttp's NUL-terminated header strings of a client's request.
    ///
    /// The value is not scanned byte by byte again: the raw-byte check of the request head
    /// (SPEC §3.2, `RawHeadScanner`, run on every head before evhttp parses it) has refused any
    /// control byte but HTAB in a field line, and evhttp ends a value at LF and at NUL. What
    /// stays is a backstop against the one byte that could still split the line upstream, should
    /// that check ever not run: a CR (`memchr`, about a tenth of the full scan's cost on a long
    /// token or cookie). The name is checked as always (the raw check does not look at names).
    mutating func clientHeader(_ name: UnsafePointer<CChar>, _ value: UnsafePointer<CChar>) {
        withBytes(name, value) { writer, name, value in
            writer.line(name, value, if: PlainBytes.isToken(name) && !RequestHeadWriter.holdsCR(value))
        }
    }

    mutating func header(_ name: String, _ value: String) {
        RequestHeadWriter.withUTF8(name) { name in
            RequestHeadWriter.withUTF8(value) { value in line(name, value, if: RequestHeadWriter.isWritable(name: name, value: value)) }
        }
    }

    /// Header lines made and checked beforehand (a caller's identity headers): appended as they
    /// are, and what was left out of them counted in `dropped`.
    mutating func lines(_ block: IdentityHeaderBlock) {
        block.lines.withUnsafeBufferPointer { write($0) }
        dropped += block.dropped
    }

    /// A header of the gateway's own (a constant token name, as `X-Request-Id`): only the value
    /// is checked.
    mutating func ownHeader(_ name: StaticString, _ value: String) {
        RequestHeadWriter.withUTF8(value) { value in
            line(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount), value,
                 if: PlainBytes.isFieldValue(value))
        }
    }

    /// The bytes of two NUL-terminated strings.
    private mutating func withBytes(_ name: UnsafePointer<CChar>, _ value: UnsafePointer<CChar>,
                                    _ body: (inout RequestHeadWriter, UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Void) {
        let nameCount = strlen(name)
        let valueCount = strlen(value)
        name.withMemoryRebound(to: UInt8.self, capacity: nameCount) { name in
            value.withMemoryRebound(to: UInt8.self, capacity: valueCount) { value in
                body(&self, UnsafeBufferPointer(start: name, count: nameCount), UnsafeBufferPointer(start: value, count: valueCount))
            }
        }
    }

    /// Writes the line when `acceptable`; counts it in `dropped` otherwise.
    private mutating func line(_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>, if acceptable: Bool) {
        guard acceptable else {
            dropped += 1
            return
        }
        write(name.count + value.count + 4) { at in
            var at = at
            if let base = name.baseAddress { at.update(from: base, count: name.count) }
            at += name.count
            at[0] = UInt8(ascii: ":")
            at[1] = UInt8(ascii: " ")
            at += 2
            if let base = value.baseAddress { at.update(from: base, count: value.count) }
            at += value.count
            at[0] = 13
            at[1] = 10
        }
    }

    /// A name of token characters (RFC 9110 §5.1) and a value with no control byte but HTAB.
    static func isWritable(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) -> Bool {
        PlainBytes.isToken(name) && PlainBytes.isFieldValue(value)
    }

    /// A CR anywhere in `value` (`memchr`: vectorized in glibc).
    static func holdsCR(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = value.baseAddress else { return false }
        return memchr(base, 13, value.count) != nil
    }
}
