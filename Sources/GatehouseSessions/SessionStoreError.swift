/// Why a session store could not answer. The server answers a cookie-authenticated request
/// with 503 (`session_store_down`) for any of them (SPEC §5.3); ``name`` is a stable short
/// label for metrics (`session store errors`) and logs.
public struct SessionStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: String, Sendable, Hashable {
        case unavailable, timeout, corruptRecord = "corrupt_record", full
    }

    private let code: Code
    /// Free text for the application log (never sent to clients).
    public let detail: String

    private init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// The store cannot be reached (connection refused or lost).
    public static func unavailable(_ detail: String = "") -> SessionStoreError { .init(.unavailable, detail) }
    /// The store did not answer in time.
    public static func timeout(_ detail: String = "") -> SessionStoreError { .init(.timeout, detail) }
    /// The store returned something that is not a record (``SessionRecord/init(encoded:)`` refused it).
    public static func corruptRecord(_ detail: String = "") -> SessionStoreError { .init(.corruptRecord, detail) }
    /// The store is full and could not make room.
    public static func full(_ detail: String = "") -> SessionStoreError { .init(.full, detail) }

    /// `unavailable`, `timeout`, `corrupt_record` or `full`.
    public var name: String { code.rawValue }

    /// Errors are equal when their kinds are; the detail is only for the log.
    public static func == (lhs: SessionStoreError, rhs: SessionStoreError) -> Bool { lhs.code == rhs.code }
    /// Hashes the kind only, as ``==`` compares.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// `name` or `name: detail`.
    public var description: String { detail.isEmpty ? name : "\(name): \(detail)" }
}
