#if canImport(Glibc)
import Glibc
#endif
import CLibevent  // OpenSSL's headers come with the libevent shim (bufferevent_ssl)
import GatehouseConfig

/// An OpenSSL server context made from ``ServerTLSFiles``: TLS 1.2 or newer, on TLS 1.2 only
/// ECDHE key exchange with AEAD ciphers (`GH_TLS12_SERVER_CIPHERS` in the libevent shim; SPEC
/// §3.2), TLS 1.3 with OpenSSL's suites, no renegotiation. Built once per config load (by `check` too, which only looks at
/// the result) and immutable afterwards, so that every event loop may make its connections'
/// `SSL` objects from it (`SSL_new` is safe on a shared, unchanging context).
public final class ServerTLSContext: @unchecked Sendable {
    public let context: OpaquePointer

    private init(_ context: OpaquePointer) { self.context = context }
    deinit { SSL_CTX_free(context) }

    public typealias Problem = ServerTLSFiles.Problem

    /// ``load(_:)`` as the config loader's check (`ConfigLoader.load(path:cpuCount:tlsCheck:)`).
    public static let check: ServerTLSFiles.Check = { files in
        if case .failure(let problem) = load(files) { return problem }
        return nil
    }

    public static func load(_ files: ServerTLSFiles) -> Result<ServerTLSContext, Problem> {
        ERR_clear_error()
        guard let made = SSL_CTX_new(TLS_server_method()) else { return .failure(.cert("OpenSSL: \(firstError())")) }
        let tls = ServerTLSContext(made)
        guard gh_ssl_ctx_server_defaults(made) == 1 else { return .failure(.cert("OpenSSL: \(firstError())")) }
        if let problem = unreadable(files.cert) { return .failure(.cert(problem)) }
        guard SSL_CTX_use_certificate_chain_file(made, files.cert) == 1 else {
            return .failure(.cert("no PEM certificate chain could be read from it (\(firstError()))"))
        }
        if let problem = unreadable(files.key) { return .failure(.key(problem)) }
        let mismatch = "the private key does not belong to the certificate"
        guard SSL_CTX_use_PrivateKey_file(made, files.key, SSL_FILETYPE_PEM) == 1 else {
            let reason = firstError()
            // OpenSSL compares the key with the certificate while loading it.
            return .failure(.key(reason == "key values mismatch" ? mismatch
                                 : "no PEM private key could be read from it (\(reason))"))
        }
        guard SSL_CTX_check_private_key(made) == 1 else { return .failure(.key(mismatch)) }
        return .success(tls)
    }

    private static func unreadable(_ path: String) -> String? {
        access(path, R_OK) == 0 ? nil : "cannot read \(path): \(String(cString: strerror(errno)))"
    }

    /// The reason of the first error in OpenSSL's queue (the cause; later ones say where it
    /// surfaced), and the queue emptied.
    private static func firstError() -> String {
        let code = ERR_peek_error()
        defer { ERR_clear_error() }
        guard code != 0, let reason = ERR_reason_error_string(code) else { return "unknown error" }
        return String(cString: reason)
    }
}
