#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SPEC §2 `server.tls`: the files of the public listeners' certificate chain and private key
/// (PEM), as absolute paths.
public struct ServerTLSFiles: Sendable, Equatable {
    public var cert: String
    public var key: String
    public init(cert: String, key: String) { self.cert = cert; self.key = key }

    /// Which file a problem is in, and what it is.
    public enum Problem: Error, Equatable {
        case cert(String)
        case key(String)
    }

    /// Loads the files as `run` will and says what is wrong with them, nil when nothing: the
    /// loader calls it for `server.tls`, so that `check` reports an unreadable file, a file
    /// without PEM, or a key that does not belong to the certificate. OpenSSL lives outside this
    /// target (GatehouseTLS's `ServerTLSContext.check`), so the check is handed in; the
    /// default only sees whether the files can be read.
    public typealias Check = @Sendable (ServerTLSFiles) -> Problem?

    /// The check without OpenSSL: both files readable.
    public static let readable: Check = { files in
        if access(files.cert, R_OK) != 0 { return .cert("cannot read \(files.cert): \(String(cString: strerror(errno)))") }
        if access(files.key, R_OK) != 0 { return .key("cannot read \(files.key): \(String(cString: strerror(errno)))") }
        return nil
    }
}
