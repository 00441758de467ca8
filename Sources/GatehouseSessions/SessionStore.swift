/// Where sessions live (SPEC §2 `sessions.store`): in this process (``MemorySessionStore``)
/// or shared by several gateway instances (Redis).
///
/// Callback style so that a store can answer from an event loop without blocking it: a
/// completion may be called synchronously, before the method returns (the memory store always
/// does), or later on the calling loop's thread (a Redis store, from that loop's hiredis
/// context). Callers must be ready for both. Keys are ``SessionID/hash(_:)`` values, never
/// cookie values.
public protocol SessionStore: AnyObject {
    /// Keeps a new record under `record.idHash`.
    func create(_ record: SessionRecord, completion: @escaping (Result<Void, SessionStoreError>) -> Void)

    /// The record for `idHash`, or nil when the store does not know it (never made, swept after
    /// expiry, or evicted). A found record may still be expired or revoked: ask
    /// ``SessionRecord/state(now:idleTimeout:)``.
    func lookup(idHash: String, completion: @escaping (Result<SessionRecord?, SessionStoreError>) -> Void)

    /// Moves the record's `lastSeen` forward to `lastSeen` (the idle timer). Does nothing for an
    /// unknown, expired or revoked session — touching never revives one.
    func touch(idHash: String, lastSeen: Int64, completion: @escaping (Result<Void, SessionStoreError>) -> Void)

    /// Marks the record revoked and keeps it as a tombstone until `until` (its absolute
    /// expiry), so that the id reports ``SessionState/revoked`` until then. Unknown ids are
    /// ignored.
    func revoke(idHash: String, until: Int64, completion: @escaping (Result<Void, SessionStoreError>) -> Void)
}
