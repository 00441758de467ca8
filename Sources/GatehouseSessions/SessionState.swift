/// Where a session stands at a given moment (``SessionRecord/state(now:idleTimeout:)``).
public enum SessionState: Sendable, Equatable {
    /// Usable: not revoked, within its idle and absolute timeouts.
    case active
    /// Past `idle_timeout` without activity, or past `absolute_timeout` in all (access log:
    /// `session_expired`).
    case expired
    /// Ended by logout before its absolute expiry (access log: `session_revoked`).
    case revoked
}
