import GatehouseCore
import GatehouseConfig
import GatehouseSessions

/// Session state that outlives one config snapshot and is shared by every loop: the memory
/// store (so a reload does not log everybody out), the login throttle, the per-client login
/// admission and the password-check threads. Made by the main thread when a config is loaded; reused by the next config when its
/// settings are compatible.
final class SessionRuntime: Sendable {
    let settings: SessionSettings
    /// The process-wide store when `store: memory`; nil for Redis (each loop has its own connection).
    let memoryStore: MemorySessionStore?
    /// Failure counts of this process: the count with a memory store, the fallback with Redis.
    let throttle: LoginThrottle
    /// At most 2 password checks per client at once (SPEC §3.2); kept across reloads.
    let admission: LoginAdmission
    let passwords: PasswordCheckPool

    private init(settings: SessionSettings, memoryStore: MemorySessionStore?, throttle: LoginThrottle,
                 admission: LoginAdmission, passwords: PasswordCheckPool) {
        self.settings = settings
        self.memoryStore = memoryStore
        self.throttle = throttle
        self.admission = admission
        self.passwords = passwords
    }

    /// The runtime for `settings`, keeping what `previous` had when it still fits.
    static func make(_ settings: SessionSettings?, previous: SessionRuntime?, passwords: PasswordCheckPool) -> SessionRuntime? {
        guard let settings else { return nil }
        let clock: @Sendable () -> Int64 = { Clock.wallMs() / 1000 }
        var memory: MemorySessionStore? = nil
        if settings.store == .memory {
            if let previous, previous.settings.store == .memory, let kept = previous.memoryStore {
                kept.idleTimeout = settings.idleTimeout   // a reload keeps every session
                memory = kept
            } else {
                memory = MemorySessionStore(idleTimeout: settings.idleTimeout, clock: clock)
            }
        }
        let maxFailures = settings.login?.maxFailures ?? 5
        let window = settings.login?.failureWindow ?? 900
        let throttle: LoginThrottle
        if let previous, previous.throttle.maxFailures == maxFailures, previous.throttle.window == window {
            throttle = previous.throttle
        } else {
            throttle = LoginThrottle(maxFailures: maxFailures, window: window, clock: clock)
        }
        return SessionRuntime(settings: settings, memoryStore: memory, throttle: throttle,
                              admission: previous?.admission ?? LoginAdmission(), passwords: passwords)
    }
}
