import GatehouseSessions

/// Login failure counts kept in Redis (SPEC §3.2 Login admission, §2 `max_failures`), so that
/// N gateway instances sharing the store allow `max_failures` guesses per username and client
/// in all, not N times as many. Same rules as ``LoginThrottle`` (which stays the count while
/// Redis cannot answer): ``reserveLogin(key:maxFailures:window:completion:)`` before a
/// password check counts the attempt as pending, ``settleLogin(key:outcome:maxFailures:window:completion:)``
/// after it; failures plus pending attempts never exceed `maxFailures`.
///
/// **Layout.** One hash per username + client under `loginKeyPrefix + key`
/// (``LoginThrottle/sharedKey(username:client:)``: a hex SHA-256, so no username or address
/// reaches Redis): `f` failures, `p` attempts pending. The key expires `window` seconds after
/// its first attempt, and again `window` seconds after the failure that reached the limit (the
/// lockout). Each step is one Lua script on this loop's connection, so it is atomic across
/// instances. A pending attempt whose instance died is forgotten with its key.
extension RedisSessionStore {
    /// Put before every login key.
    public static let loginKeyPrefix = "gatehouse:login:"

    /// Counts an attempt of `key` as pending when failures plus pending attempts are below
    /// `maxFailures`: `.allowed`; else `.refused` with the lockout's remaining seconds, or 1
    /// when only pending attempts stand in the way.
    public func reserveLogin(key: String, maxFailures: Int, window: Int64,
                             completion: @escaping (Result<LoginThrottle.Verdict, SessionStoreError>) -> Void) {
        connection.send(["EVAL", Self.reserveLoginScript, "1", Self.loginKeyPrefix + key,
                         String(max(maxFailures, 1)), String(max(window, 1))]) { result in
            completion(result.flatMap(Self.verdict))
        }
    }

    /// Settles an attempt that ``reserveLogin(key:maxFailures:window:completion:)`` allowed: a
    /// success clears the key, a failure counts (and locks at `maxFailures`), an abandoned
    /// attempt only stops being pending.
    public func settleLogin(key: String, outcome: LoginThrottle.Outcome, maxFailures: Int, window: Int64,
                            completion: @escaping (Result<Void, SessionStoreError>) -> Void) {
        let code: String
        switch outcome {
        case .succeeded: code = "s"
        case .failed: code = "f"
        case .abandoned: code = "a"
        }
        connection.send(["EVAL", Self.settleLoginScript, "1", Self.loginKeyPrefix + key, code,
                         String(max(maxFailures, 1)), String(max(window, 1))]) { result in
            completion(result.flatMap { reply in
                if case .integer = reply { return .success(()) }
                return .failure(Self.unexpectedLoginReply(reply))
            })
        }
    }

    /// The reserve script's integer: 0 allowed, n > 0 refused for n seconds.
    static func verdict(_ reply: RedisReply) -> Result<LoginThrottle.Verdict, SessionStoreError> {
        guard case .integer(let seconds) = reply, seconds >= 0 else { return .failure(unexpectedLoginReply(reply)) }
        return .success(seconds == 0 ? .allowed : .refused(retryAfter: seconds))
    }

    private static func unexpectedLoginReply(_ reply: RedisReply) -> SessionStoreError {
        if case .error(let message) = reply { return .unavailable("redis: \(message)") }
        return .unavailable("unexpected reply from redis to a login count")
    }

    // MARK: scripts

    /// KEYS[1]; ARGV: maxFailures, window. Returns 0 (allowed, now pending) or the seconds to
    /// wait. A key without an expiry (never written so by these scripts) gets one.
    static let reserveLoginScript = """
        local f = tonumber(redis.call('HGET', KEYS[1], 'f') or '0') or 0
        local p = tonumber(redis.call('HGET', KEYS[1], 'p') or '0') or 0
        local max = tonumber(ARGV[1])
        if f >= max then
          local ttl = redis.call('TTL', KEYS[1])
          if ttl < 0 then
            redis.call('EXPIRE', KEYS[1], ARGV[2])
            ttl = tonumber(ARGV[2])
          end
          if ttl < 1 then ttl = 1 end
          return ttl
        end
        if f + p >= max then return 1 end
        redis.call('HINCRBY', KEYS[1], 'p', 1)
        if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
        return 0
        """

    /// KEYS[1]; ARGV: outcome (`s` succeeded, `f` failed, `a` abandoned), maxFailures, window.
    /// Returns the failures now counted (0 after a success). A failure settled after its key
    /// expired starts a new window.
    static let settleLoginScript = """
        if ARGV[1] == 's' then
          redis.call('DEL', KEYS[1])
          return 0
        end
        local f = tonumber(redis.call('HGET', KEYS[1], 'f') or '0') or 0
        local p = tonumber(redis.call('HGET', KEYS[1], 'p') or '0') or 0
        if p > 0 then
          p = redis.call('HINCRBY', KEYS[1], 'p', -1)
        end
        if ARGV[1] ~= 'f' then
          if f == 0 and p <= 0 then redis.call('DEL', KEYS[1]) end
          return f
        end
        f = redis.call('HINCRBY', KEYS[1], 'f', 1)
        if f >= tonumber(ARGV[2]) or redis.call('TTL', KEYS[1]) < 0 then
          redis.call('EXPIRE', KEYS[1], ARGV[3])
        end
        return f
        """
}
