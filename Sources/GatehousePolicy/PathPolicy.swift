/// How strictly request paths are checked (SPEC §4.1).
///
/// Both modes normalize the path the same way (see ``PathNormalizer``); they differ only in
/// what they accept:
/// - `strict` (the default) refuses `;` in the path and encoded percent (`%25`).
/// - `lenient` accepts both and forwards them as they are. Use it only when no upstream decodes
///   a path twice or reads `;` path parameters.
public enum PathPolicy: String, Sendable, CaseIterable {
    case strict, lenient
}

/// A request target after the path policy: the normalized path that routes match and the
/// upstream receives, the query passed through unchanged (without `?`, nil when absent), and the
/// authority of an absolute-form target (`GET http://host/x`), which replaces `Host`
/// ([RFC 9112 §3.2.2](https://www.rfc-editor.org/rfc/rfc9112#section-3.2.2)).
public struct NormalizedTarget: Sendable, Equatable {
    public var path: String
    public var query: String?
    public var authority: String?
    public init(path: String, query: String?, authority: String?) {
        self.path = path; self.query = query; self.authority = authority
    }
}
