/// What a store keeps about one session (SPEC §5.3). Times are Unix seconds.
///
/// The record never holds the session id, only ``idHash`` (``SessionID/hash(_:)``).
public struct SessionRecord: Sendable, Hashable {
    /// Hex SHA-256 of the cookie value: the store's key.
    public var idHash: String
    /// Who logged in (the users-file name).
    public var subject: String
    /// The subject's roles at login (`sessions.login.roles`).
    public var roles: [String]
    /// When the session was made (login).
    public var createdAt: Int64
    /// The last authenticated request or keepalive.
    public var lastSeen: Int64
    /// `createdAt + absolute_timeout`: the session ends then, whatever happens.
    public var absoluteExpiry: Int64
    /// Set by logout; the record stays (a tombstone) until ``absoluteExpiry`` so that the id
    /// reports ``SessionState/revoked`` everywhere until it would have expired anyway.
    public var revoked: Bool
    /// Made by the OIDC login (SPEC §14.2): its roles are the ID token's, kept for its life,
    /// not re-read from the users file (SPEC §3.2).
    public var oidc: Bool = false

    /// Makes a record.
    public init(idHash: String, subject: String, roles: [String], createdAt: Int64, lastSeen: Int64,
                absoluteExpiry: Int64, revoked: Bool = false, oidc: Bool = false) {
        self.oidc = oidc
        self.idHash = idHash
        self.subject = subject
        self.roles = roles
        self.createdAt = createdAt
        self.lastSeen = lastSeen
        self.absoluteExpiry = absoluteExpiry
        self.revoked = revoked
    }

    /// A new session at login: seen now, ending `absoluteTimeout` seconds from now.
    public init(idHash: String, subject: String, roles: [String], now: Int64, absoluteTimeout: Int64) {
        self.init(idHash: idHash, subject: subject, roles: roles, createdAt: now, lastSeen: now,
                  absoluteExpiry: now + absoluteTimeout)
    }

    /// The state at `now`, checked in this order: at or past ``absoluteExpiry`` → expired;
    /// revoked → revoked; at or past `lastSeen + idleTimeout` → expired; else active.
    /// A session is thus over at the very second its timeout is reached.
    public func state(now: Int64, idleTimeout: Int64) -> SessionState {
        if now >= absoluteExpiry { return .expired }
        if revoked { return .revoked }
        if now >= idleExpiry(idleTimeout: idleTimeout) { return .expired }
        return .active
    }

    /// When the session ends unless it is seen again: the earlier of `lastSeen + idleTimeout`
    /// and ``absoluteExpiry`` (a store's TTL).
    public func expiry(idleTimeout: Int64) -> Int64 {
        min(idleExpiry(idleTimeout: idleTimeout), absoluteExpiry)
    }

    /// Until when a store keeps the record of a session that has ended, so that its cookie is
    /// still refused as `session_expired` rather than `session_unknown` (SPEC §9): its absolute
    /// expiry, or one idle timeout after it ended, whichever is later. (A revoked session's
    /// tombstone has its own `until`.)
    public func forgetAt(idleTimeout: Int64) -> Int64 {
        let (later, overflow) = expiry(idleTimeout: idleTimeout).addingReportingOverflow(idleTimeout)
        return max(absoluteExpiry, overflow ? .max : later)
    }

    private func idleExpiry(idleTimeout: Int64) -> Int64 {
        let (sum, overflow) = lastSeen.addingReportingOverflow(idleTimeout)
        return overflow ? .max : sum
    }
}
