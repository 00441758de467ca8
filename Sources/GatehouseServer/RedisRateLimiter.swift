import GatehouseCore
import GatehousePolicy
import GatehouseSessions
import GatehouseConfig
import GatehouseDecision

/// The Redis store of `rate_limits` (SPEC §13): the GCRA of ``GCRA`` run by Redis itself, one
/// atomic `EVALSHA` per request, so that every instance sharing the server shares each
/// bucket exactly. The clock is Redis's (`TIME`), so the instances' clocks need not agree.
///
/// The script is loaded once per connection (`SCRIPT LOAD`, sent first); until its digest is
/// known, and when Redis answers `NOSCRIPT` (a restart, `SCRIPT FLUSH`), the request is sent
/// as `EVAL` with the script's text, which loads it again.
///
/// A key is `gatehouse:ratelimit:` + route + `:` + the hex SHA-256 of the key's kind, scope
/// and value (a subject, an address or a header value never reaches Redis as such), holding the
/// TAT in microseconds; it expires when the bucket is full again.
///
/// Failures (down, timeout, an error reply) answer ``RateLimitAnswer/storeFailed``: the
/// request passes.
///
/// Threading: create, use and release on the thread of `base`'s loop, like ``RedisConnection``.
final class RedisRateLimiter {
    let connection: RedisConnection
    let setting: SessionStoreSetting
    private(set) var digest: String?
    private var loading = false

    static let keyPrefix = "gatehouse:ratelimit:"

    /// GCRA (see ``GCRA/admit(tat:now:interval:tolerance:)``): 0 when admitted, else the
    /// microseconds until it would be. Numbers stay below 2^53 (``RateLimit/maxCount``,
    /// ``RateLimit/maxBurst``), so Lua's doubles hold them exactly.
    static let script = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local interval = tonumber(ARGV[1])
        local tolerance = tonumber(ARGV[2])
        local tat = tonumber(redis.call('GET', KEYS[1])) or 0
        if tat < now then tat = now end
        local nexttat = tat + interval
        local ahead = nexttat - now
        if ahead > tolerance then return ahead - tolerance end
        redis.call('SET', KEYS[1], string.format('%.0f', nexttat), 'PX', math.floor(ahead / 1000) + 1)
        return 0
        """

    init(base: OpaquePointer, address: String, setting: SessionStoreSetting, commandTimeoutMs: Int64 = 500) {
        self.setting = setting
        guard case let .redis(_, port, db, password) = setting else { fatalError("a Redis rate-limit store needs a redis setting") }
        connection = RedisConnection(base: base, host: address, port: port, db: db, password: password,
                                     commandTimeoutMs: commandTimeoutMs)
        loadScript()
    }

    deinit { connection.close() }

    var log: (String) -> Void {
        get { connection.log }
        set { connection.log = newValue }
    }

    /// The Redis key of `key`.
    static func redisKey(_ key: RateLimitKey) -> String {
        keyPrefix + key.route + ":" + SessionID.hash("\(key.kind.rawValue)\u{0}\(key.scope)\u{0}\(key.value)")
    }

    /// One request of `key` under `limit`; `completion` runs once on the loop (possibly before
    /// this returns, when the connection is down).
    func admit(_ key: RateLimitKey, limit: RateLimit, completion: @escaping (RateLimitAnswer) -> Void) {
        let arguments = ["1", Self.redisKey(key), String(limit.intervalMicros), String(limit.toleranceMicros)]
        guard let digest else {
            loadScript()
            return send(["EVAL", Self.script] + arguments, completion: completion)
        }
        connection.send(["EVALSHA", digest] + arguments) { [weak self] result in
            if case .success(.error(let message)) = result, message.hasPrefix("NOSCRIPT") {
                self?.digest = nil
                self?.loadScript()
                return self?.send(["EVAL", Self.script] + arguments, completion: completion) ?? completion(.storeFailed)
            }
            completion(Self.answer(result))
        }
    }

    private func send(_ command: [String], completion: @escaping (RateLimitAnswer) -> Void) {
        connection.send(command) { completion(Self.answer($0)) }
    }

    private func loadScript() {
        guard !loading else { return }
        loading = true
        connection.send(["SCRIPT", "LOAD", Self.script]) { [weak self] result in
            guard let self else { return }
            loading = false
            if case .success(.string(let bytes)) = result { digest = String(decoding: bytes, as: UTF8.self) }
        }
    }

    static func answer(_ result: Result<RedisReply, SessionStoreError>) -> RateLimitAnswer {
        switch result {
        case .success(.integer(let micros)): return micros <= 0 ? .allowed : .limited(retryAfterMicros: micros)
        default: return .storeFailed
        }
    }
}
