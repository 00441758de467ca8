import Synchronization

/// Admission of password checks per client (SPEC §3.2 Login admission): at most `perClient`
/// logins of one client are being checked at once, whatever the usernames. Without it one
/// client that varies the username (so that no per-username throttle ever trips) keeps every
/// password thread busy and starves everybody else's logins; with it, each client holds at
/// most `perClient` places in the check queue, so a login waits behind a bounded number of
/// checks per other client.
///
/// A refused login is answered 429 with `Retry-After: 1` and is not a failed attempt.
///
/// **Shared, not per loop**, behind a `Mutex` (one dictionary access per call): a client's
/// connections may land on any loop.
///
/// **Bounded.** A client is remembered only while one of its checks is admitted, and at most
/// `capacity` clients at once (beyond that every login is refused until a check ends): the
/// memory is bounded by the checks in flight, which the check pool bounds in turn.
public final class LoginAdmission: Sendable {
    /// One admitted login: ``release()`` it when its password check has ended (or will never
    /// run). Releasing twice is harmless, and a ticket that is dropped unreleased releases
    /// itself, so that no path can leave a client's place taken for good.
    public final class Ticket: Sendable {
        /// The client key it was admitted under.
        public let client: String
        private let owner: LoginAdmission
        private let released = Atomic<Bool>(false)

        fileprivate init(client: String, owner: LoginAdmission) {
            self.client = client
            self.owner = owner
        }

        deinit { release() }

        /// Gives the client's place back.
        public func release() {
            guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
            owner.give(back: client)
        }
    }

    /// Most checks of one client at once.
    public let perClient: Int
    /// Most clients with a check admitted at once.
    public let capacity: Int
    private let admitted = Mutex<[String: Int]>([:])

    /// `perClient` and `capacity` are at least 1.
    public init(perClient: Int = 2, capacity: Int = 4096) {
        self.perClient = max(perClient, 1)
        self.capacity = max(capacity, 1)
    }

    /// A ticket when `client` (a ``GatehousePolicy``-made client key, see `ClientKey`) has
    /// fewer than ``perClient`` checks admitted; nil to refuse.
    public func admit(client: String) -> Ticket? {
        let ok = admitted.withLock { admitted -> Bool in
            let current = admitted[client] ?? 0
            guard current < perClient else { return false }
            if current == 0, admitted.count >= capacity { return false }
            admitted[client] = current + 1
            return true
        }
        return ok ? Ticket(client: client, owner: self) : nil
    }

    /// Checks admitted now for `client`.
    public func admittedCount(client: String) -> Int { admitted.withLock { $0[client] ?? 0 } }

    /// Clients with a check admitted now.
    public var clientCount: Int { admitted.withLock { $0.count } }

    fileprivate func give(back client: String) {
        admitted.withLock { admitted in
            guard let current = admitted[client] else { return }
            admitted[client] = current > 1 ? current - 1 : nil
        }
    }
}
