/// Why a glob pattern was refused.
public struct GlobError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A path glob (SPEC §4.2), matched against normalized paths (see ``PathNormalizer``).
///
/// - A literal segment matches exactly, case-sensitively.
/// - `*` matches any run of characters, the empty run included, within one segment (never `/`):
///   `/a/*.json` matches `/a/x.json`, not `/a/b/x.json`.
/// - `**` as a whole segment matches zero or more segments: `/a/**` matches `/a`, `/a/`,
///   `/a/b` and `/a/b/c`; `/a/**/z` matches `/a/z` and `/a/b/z`; `/**` matches every path.
///
/// Refused: a pattern that does not start with `/`, `**` that is not a whole segment (`/a**`),
/// and segments no normalized path can have (`//`, `.`, `..`).
///
/// The pattern is compiled into segments once; matching walks the path's UTF-8 bytes and
/// allocates nothing. Patterns without wildcards compare by string equality, and `P/**` with a
/// literal `P` by a prefix check.
public struct Glob: Sendable, CustomStringConvertible, Hashable {
    public let pattern: String
    private let segments: [Segment]
    let shape: Shape

    enum Segment: Sendable {
        /// Matches exactly these bytes.
        case literal([UInt8])
        /// The segment split on `*` (at least two parts; the first and last may be empty).
        case wildcard([[UInt8]])
        /// `**`: zero or more whole segments.
        case globstar
    }

    enum Shape: Sendable {
        /// No wildcards: the path must equal the pattern.
        case exact
        /// `P/**` with a literal `P` (empty for `/**`): the path is `P` or starts with `P/`.
        case subtree(prefix: [UInt8])
        case general
    }

    public init(_ pattern: String) throws(GlobError) {
        self.pattern = pattern
        guard pattern.utf8.first == ASCII.slash else {
            throw GlobError("glob \"\(pattern)\" must start with \"/\"")
        }
        let parts = pattern.utf8.dropFirst().split(separator: ASCII.slash, omittingEmptySubsequences: false)
        var segments: [Segment] = []
        for (position, part) in parts.enumerated() {
            let bytes = Array(part)
            if bytes.isEmpty && position < parts.count - 1 {
                throw GlobError("glob \"\(pattern)\" has an empty segment (\"//\"), which no normalized path has")
            }
            if bytes == [ASCII.dot] || bytes == [ASCII.dot, ASCII.dot] {
                throw GlobError("glob \"\(pattern)\" has a \".\" or \"..\" segment, which no normalized path has")
            }
            if bytes == [ASCII.star, ASCII.star] {
                segments.append(.globstar)
            } else if bytes.indices.dropLast().contains(where: { bytes[$0] == ASCII.star && bytes[$0 + 1] == ASCII.star }) {
                throw GlobError("glob \"\(pattern)\": \"**\" must be a whole segment, as in \"/a/**\"")
            } else if bytes.contains(ASCII.star) {
                segments.append(.wildcard(bytes.split(separator: ASCII.star, omittingEmptySubsequences: false).map(Array.init)))
            } else {
                segments.append(.literal(bytes))
            }
        }
        self.segments = segments
        self.shape = Self.shape(of: segments, pattern: pattern)
    }

    private static func shape(of segments: [Segment], pattern: String) -> Shape {
        let wildcards = segments.filter { if case .literal = $0 { false } else { true } }.count
        if wildcards == 0 { return .exact }
        if wildcards == 1, case .globstar = segments[segments.count - 1] {
            return .subtree(prefix: Array(pattern.utf8.dropLast(3)))  // drop "/**"
        }
        return .general
    }

    /// Whether `path` (a normalized path, starting with `/`) matches the pattern.
    public func matches(_ path: String) -> Bool {
        if case .exact = shape { return path == pattern }
        if let result = path.utf8.withContiguousStorageIfAvailable({ matches(bytes: $0) }) { return result }
        return Array(path.utf8).withUnsafeBufferPointer { matches(bytes: $0) }  // not reached for native strings
    }

    private func matches(bytes path: UnsafeBufferPointer<UInt8>) -> Bool {
        guard path.first == ASCII.slash else { return false }
        switch shape {
        case .exact:
            return path.elementsEqual(pattern.utf8)
        case .subtree(let prefix):
            guard path.count >= prefix.count else { return false }
            for index in prefix.indices where path[index] != prefix[index] { return false }
            return path.count == prefix.count || path[prefix.count] == ASCII.slash
        case .general:
            return matchesSegments(path)
        }
    }

    /// Segment-level wildcard matching: every non-`**` pattern segment consumes exactly one
    /// path segment, so the classic greedy walk that backtracks to the last `**` is exact.
    /// A path segment starts after a `/` and ends before the next `/` or at the end.
    private func matchesSegments(_ path: UnsafeBufferPointer<UInt8>) -> Bool {
        var patternIndex = 0
        var segmentStart = 1
        var starPattern = -1
        var starSegment = 0
        while segmentStart <= path.count {
            let segmentEnd = Self.segmentEnd(path, from: segmentStart)
            if patternIndex < segments.count {
                switch segments[patternIndex] {
                case .globstar:
                    starPattern = patternIndex
                    starSegment = segmentStart
                    patternIndex += 1
                    continue
                case let segment where Self.segment(segment, matches: path, segmentStart..<segmentEnd):
                    patternIndex += 1
                    segmentStart = segmentEnd + 1
                    continue
                default:
                    break
                }
            }
            guard starPattern >= 0 else { return false }
            // Let the last `**` absorb one more segment and retry from there.
            starSegment = Self.segmentEnd(path, from: starSegment) + 1
            segmentStart = starSegment
            patternIndex = starPattern + 1
        }
        while patternIndex < segments.count, case .globstar = segments[patternIndex] { patternIndex += 1 }
        return patternIndex == segments.count
    }

    @inline(__always)
    private static func segmentEnd(_ path: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var end = start
        while end < path.count, path[end] != ASCII.slash { end += 1 }
        return end
    }

    private static func segment(_ segment: Segment, matches path: UnsafeBufferPointer<UInt8>,
                                _ range: Range<Int>) -> Bool {
        switch segment {
        case .globstar:
            return true
        case .literal(let literal):
            return literal.count == range.count && path[range].elementsEqual(literal)
        case .wildcard(let parts):
            let first = parts[0], last = parts[parts.count - 1]
            guard range.count >= first.count + last.count,
                  path[range.lowerBound..<(range.lowerBound + first.count)].elementsEqual(first),
                  path[(range.upperBound - last.count)..<range.upperBound].elementsEqual(last) else { return false }
            // Middle parts, leftmost first, between the first and the last part.
            var position = range.lowerBound + first.count
            let limit = range.upperBound - last.count
            for part in parts.dropFirst().dropLast() {
                guard let found = find(part, in: path, position..<limit) else { return false }
                position = found + part.count
            }
            return true
        }
    }

    private static func find(_ needle: [UInt8], in path: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int? {
        guard needle.count <= range.count else { return nil }
        for start in range.lowerBound...(range.upperBound - needle.count)
        where path[start..<(start + needle.count)].elementsEqual(needle) {
            return start
        }
        return nil
    }

    public var description: String { pattern }

    public static func == (lhs: Glob, rhs: Glob) -> Bool { lhs.pattern == rhs.pattern }
    public func hash(into hasher: inout Hasher) { hasher.combine(pattern) }
}
