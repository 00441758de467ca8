import GatehouseSessions

/// The shared session store (`sessions.store: redis`, SPEC §5.3): several gateway instances
/// and every loop of each see the same sessions, so a revoked session fails everywhere at
/// once. One store per event loop, each with its own connection.
///
/// **Layout.** One Redis hash per session under `keyPrefix + idHash` (the hex SHA-256 of the
/// session id: the id itself never reaches Redis):
///
/// | field | value |
/// |---|---|
/// | `r` | ``SessionRecord/encoded`` as created |
/// | `s` | `lastSeen` (Unix seconds), moved by ``touch(idHash:lastSeen:completion:)`` |
/// | `v` | `"1"` once revoked, else `"0"` |
///
/// The key expires (`EXPIREAT`) when its record may be forgotten
/// (``SessionRecord/forgetAt(idleTimeout:)``: the session's absolute expiry, or one idle timeout
/// after it ended, whichever is later), and a revoked one at the `until` given to
/// ``revoke(idHash:until:completion:)`` (a tombstone). Until then a session that ended is still
/// found, so its cookie is refused as `session_expired`, as with ``MemorySessionStore``. Every write is one Lua script, so it is
/// atomic: a touch never revives a missing key, never un-revokes, never moves `lastSeen`
/// back, and never extends a session past its absolute expiry. Expiry times are absolute, so
/// the instances' clocks and Redis's must agree (NTP).
///
/// A record that Redis still holds is returned whatever its state, as the protocol asks.
///
/// **Failures.** While Redis is unreachable every method fails at once with
/// ``SessionStoreError/unavailable(_:)``; a command without a reply within `commandTimeoutMs`
/// fails with ``SessionStoreError/timeout(_:)``; an error reply (wrong password, `READONLY`,
/// `OOM`…) is `unavailable`; a record that does not decode is
/// ``SessionStoreError/corruptRecord(_:)``. The connection comes back by itself (see
/// ``RedisConnection``).
///
/// Threading: create, use and release the store on the thread of `base`'s loop; every
/// method and every completion runs there (a completion may also run before its method
/// returns). Not thread-safe. Release it (or call ``close()``) before freeing `base`.
public final class RedisSessionStore: SessionStore {
    /// `sessions.idle_timeout` in seconds: how far a touch pushes the key's expiry.
    public let idleTimeout: Int64
    /// Put before every `idHash` to make a key.
    public let keyPrefix: String
    let connection: RedisConnection

    /// Connects to Redis at `host:port` on `base` at once (`AUTH password` and `SELECT db`
    /// when given). `host` is best an IP address: hiredis resolves names with a blocking
    /// `getaddrinfo`.
    public init(base: OpaquePointer, host: String, port: UInt16, db: Int, password: String?, idleTimeout: Int64,
                commandTimeoutMs: Int64 = 500, keyPrefix: String = "gatehouse:session:") {
        self.idleTimeout = idleTimeout
        self.keyPrefix = keyPrefix
        connection = RedisConnection(base: base, host: host, port: port, db: db, password: password,
                                     commandTimeoutMs: commandTimeoutMs)
    }

    /// Receives connection changes (lost, back, refused credentials) for the application log.
    public var log: (String) -> Void {
        get { connection.log }
        set { connection.log = newValue }
    }

    /// True while connected and authenticated (for readiness and metrics; commands do not
    /// wait for it).
    public var isConnected: Bool { connection.isConnected }

    /// Closes the connection: commands in flight and later ones fail with `unavailable`.
    public func close() { connection.close() }

    /// The Redis key of a session.
    public func key(for idHash: String) -> String { keyPrefix + idHash }

    public func create(_ record: SessionRecord, completion: @escaping (Result<Void, SessionStoreError>) -> Void) {
        let expireAt = record.revoked ? record.absoluteExpiry : record.forgetAt(idleTimeout: idleTimeout)
        connection.send(["EVAL", Self.createScript, "1", key(for: record.idHash),
                         record.encoded, String(record.lastSeen), record.revoked ? "1" : "0", String(expireAt)]) {
            completion(Self.done($0))
        }
    }

    public func lookup(idHash: String, completion: @escaping (Result<SessionRecord?, SessionStoreError>) -> Void) {
        connection.send(["HMGET", key(for: idHash), "r", "s", "v"]) { result in
            completion(result.flatMap { Self.record(from: $0, idHash: idHash) })
        }
    }

    public func touch(idHash: String, lastSeen: Int64, completion: @escaping (Result<Void, SessionStoreError>) -> Void) {
        connection.send(["EVAL", Self.touchScript, "1", key(for: idHash), String(lastSeen), String(idleTimeout)]) {
            completion(Self.done($0))
        }
    }

    public func revoke(idHash: String, until: Int64, completion: @escaping (Result<Void, SessionStoreError>) -> Void) {
        connection.send(["EVAL", Self.revokeScript, "1", key(for: idHash), String(until)]) {
            completion(Self.done($0))
        }
    }

    // MARK: replies

    /// The scripts answer an integer: 1 done, 0 nothing to do, -1 the stored record is unreadable.
    private static func done(_ result: Result<RedisReply, SessionStoreError>) -> Result<Void, SessionStoreError> {
        switch result {
        case .failure(let error): return .failure(error)
        case .success(.integer(let n)) where n >= 0: return .success(())
        case .success(.integer): return .failure(.corruptRecord("stored record has no readable expiry"))
        case .success(let other): return .failure(unexpected(other))
        }
    }

    /// `HMGET key r s v`: nil when there is no `r`; otherwise the decoded record with the
    /// current `s` and `v` merged in.
    static func record(from reply: RedisReply, idHash: String) -> Result<SessionRecord?, SessionStoreError> {
        guard case .array(let fields) = reply, fields.count == 3 else { return .failure(unexpected(reply)) }
        if fields[0] == .null { return .success(nil) }
        guard let text = fields[0].text, var record = SessionRecord(encoded: text), record.idHash == idHash else {
            return .failure(.corruptRecord("field r of a session does not decode"))
        }
        switch fields[1] {
        case .null: break
        case .string:
            guard let seen = fields[1].text.flatMap({ Int64($0) }) else {
                return .failure(.corruptRecord("field s of a session is not a number"))
            }
            record.lastSeen = max(record.lastSeen, seen)
        default:
            return .failure(unexpected(fields[1]))
        }
        if fields[2].text == "1" { record.revoked = true }
        return .success(record)
    }

    private static func unexpected(_ reply: RedisReply) -> SessionStoreError {
        if case .error(let message) = reply { return .unavailable("redis: \(message)") }
        return .unavailable("unexpected reply from redis")
    }

    // MARK: scripts

    /// KEYS[1]; ARGV: r, s, v, expire-at.
    static let createScript = """
        redis.call('HSET', KEYS[1], 'r', ARGV[1], 's', ARGV[2], 'v', ARGV[3])
        redis.call('EXPIREAT', KEYS[1], ARGV[4])
        return 1
        """

    /// KEYS[1]; ARGV: lastSeen, idleTimeout. Only a live, unrevoked session moves forward; its
    /// end becomes e = min(lastSeen + idle, absolute expiry, read from `r`'s `x=`) and its key's
    /// expiry max(x, e + idle) (``SessionRecord/forgetAt(idleTimeout:)``). A session already
    /// over by the toucher's clock is left as it is.
    static let touchScript = """
        local f = redis.call('HMGET', KEYS[1], 'r', 's', 'v')
        if not f[1] or f[3] == '1' then return 0 end
        local x = tonumber(string.match('&' .. f[1], '&x=(%-?%d+)'))
        local cur = tonumber(f[2])
        if not x or not cur then return -1 end
        local s = tonumber(ARGV[1])
        local idle = tonumber(ARGV[2])
        if s <= cur or s >= x or s >= cur + idle then return 0 end
        local e = s + idle
        if e > x then e = x end
        redis.call('HSET', KEYS[1], 's', ARGV[1])
        local forget = e + idle
        if forget < x then forget = x end
        redis.call('EXPIREAT', KEYS[1], string.format('%d', forget))
        return 1
        """

    /// KEYS[1]; ARGV: until. Unknown keys stay unknown (no tombstone for a session never seen).
    static let revokeScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        redis.call('HSET', KEYS[1], 'v', '1')
        redis.call('EXPIREAT', KEYS[1], ARGV[1])
        return 1
        """
}
