/// Checks the raw bytes of an HTTP/1.1 request head before any parser reads them (SPEC §3.2,
/// RFC 9112 §2.2, §5.2), line by line, in the same framing as evhttp 2.1's
/// `evbuffer_readln(EVBUFFER_EOL_CRLF)`: a line ends at LF, and one CR right before that LF
/// belongs to the line end. An empty line ends the head.
///
/// Refused, wherever they are:
/// - in the request line, the bytes that change how evhttp splits it: NUL (it ends evhttp's
///   C string early), HTAB and a bare CR. Other control bytes in the request line are left to
///   the path policy (SPEC §4.1), which refuses them in both modes with `path_rejected` — so
///   that the log shows the method and the target as they were tried (SPEC §3.2 Logs);
/// - a control byte other than HTAB inside a field line — CR (a bare CR, or a CR that is not
///   the one right before LF), NUL, VT, DEL, …;
/// - an obs-fold continuation (a field line starting with SP or HTAB).
///
/// evhttp itself appends a folded line to the previous value as it is (CR and VT included) and
/// cuts a value at a NUL, so these checks must see the bytes, not evhttp's parsed fields.
///
/// The scanner is a small state machine fed with consecutive chunks (a head split across
/// reads, or across the chains of a buffer, is checked the same as in one piece). It keeps no
/// bytes. Pure: no libevent; the server feeds it from the client connection's input buffer,
/// and a fuzz target feeds it arbitrary bytes (`scan(_:)`).
public struct RawHeadScanner: Sendable {
    /// Where in the head the next byte is.
    public enum Start: Sendable {
        /// At the first byte of the request line.
        case requestLine
        /// At the first byte of a field line (after the request line).
        case fields
    }

    /// What is wrong with a head. For tests and debugging; the client only ever gets 400.
    public enum Problem: Equatable, Sendable {
        /// NUL, HTAB or a bare CR in the request line (`byte`, at `offset` from the start of the feed).
        case controlInRequestLine(byte: UInt8, offset: Int)
        /// A control byte other than HTAB in a field line.
        case controlInField(byte: UInt8, offset: Int)
        /// A field line that starts with SP or HTAB (obs-fold, RFC 9112 §5.2).
        case obsFold(offset: Int)
        /// The request line is empty (evhttp does not skip a leading empty line).
        case emptyRequestLine
    }

    /// The state after the bytes fed so far.
    public enum Verdict: Equatable, Sendable {
        /// No problem yet; the head is not complete.
        case needMore
        /// The head is complete and clean: `length` bytes from the start of the feed (through
        /// the empty line's LF), or through the request line's LF when the scanner was asked to
        /// stop there.
        case complete(length: Int)
        case invalid(Problem)
    }

    private enum Phase { case requestLine, lineStart, inField, done }

    private var phase: Phase
    /// The previous byte was a CR: valid only if the next one is LF.
    private var pendingCR = false
    /// Bytes of the current line so far (terminator excluded).
    private var lineLength = 0
    /// Bytes fed so far.
    private var offset = 0
    private let stopAfterRequestLine: Bool
    private var verdict: Verdict = .needMore

    /// A scanner positioned at `start`. With `stopAfterRequestLine`, the head counts as
    /// complete at the end of the request line (for a caller that checks the request line
    /// and the field lines at separate times, as evhttp parses them).
    public init(start: Start = .requestLine, stopAfterRequestLine: Bool = false) {
        phase = start == .requestLine ? .requestLine : .lineStart
        self.stopAfterRequestLine = stopAfterRequestLine
    }

    /// The verdict after the bytes fed so far.
    public var current: Verdict { verdict }

    /// Feeds the next bytes of the head. Once the verdict is `complete` or `invalid`, further
    /// bytes are ignored (those after a complete head are the body or the next request).
    @discardableResult
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Verdict {
        guard case .needMore = verdict, let base = bytes.baseAddress else { return verdict }
        let count = bytes.count
        var index = 0
        while index < count {
            // Inside a line, a run of plain bytes changes nothing but the counts: skip it whole.
            if !pendingCR && (phase == .inField || phase == .requestLine) {
                let run = PlainBytes.prefixLength(base + index, count - index)
                if run > 0 {
                    index += run
                    offset += run
                    lineLength += run
                    continue
                }
            }
            if let end = step(base.load(fromByteOffset: index, as: UInt8.self)) {
                verdict = end
                return end
            }
            offset += 1
            index += 1
        }
        return verdict
    }

    /// One byte; a verdict when the head ends or is refused here.
    @inline(__always)
    private mutating func step(_ byte: UInt8) -> Verdict? {
        if pendingCR {
            pendingCR = false
            if byte != 10 {
                // The CR was inside the line, not its end.
                return phase == .requestLine ? .invalid(.controlInRequestLine(byte: 13, offset: offset - 1))
                                             : .invalid(.controlInField(byte: 13, offset: offset - 1))
            }
        }
        switch byte {
        case 10:
            return endOfLine()
        case 13:
            pendingCR = true
            return nil
        default:
            break
        }
        switch phase {
        case .requestLine:
            if byte == 0x00 || byte == 0x09 { return .invalid(.controlInRequestLine(byte: byte, offset: offset)) }
        case .lineStart:
            if byte == 0x20 || byte == 0x09 { return .invalid(.obsFold(offset: offset)) }
            if byte < 0x20 || byte == 0x7F { return .invalid(.controlInField(byte: byte, offset: offset)) }
            phase = .inField
        case .inField:
            if (byte < 0x20 && byte != 0x09) || byte == 0x7F { return .invalid(.controlInField(byte: byte, offset: offset)) }
        case .done:
            break
        }
        lineLength += 1
        return nil
    }

    /// At an LF (`offset` is the LF's position).
    private mutating func endOfLine() -> Verdict? {
        defer { lineLength = 0 }
        switch phase {
        case .requestLine:
            if lineLength == 0 { return .invalid(.emptyRequestLine) }
            if stopAfterRequestLine { return .complete(length: offset + 1) }
            phase = .lineStart
            return nil
        case .lineStart:
            phase = .done
            return .complete(length: offset + 1)
        case .inField:
            phase = .lineStart
            return nil
        case .done:
            return nil
        }
    }

    /// The verdict on a whole buffer: a head from its request line (the fuzz target's entry).
    public static func scan(_ bytes: UnsafeRawBufferPointer) -> Verdict {
        var scanner = RawHeadScanner()
        return scanner.feed(bytes)
    }
}
