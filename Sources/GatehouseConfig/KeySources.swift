import GatehouseAuth

/// Loads the key sources of one `jwt.issuers` entry (SPEC §2). Each problem is reported at the
/// key that names the source; a secret's bytes never appear in a message.
struct KeySources {
    let configDirectory: String
    let environment: (String) -> String?
    let diagnostics: Diagnostics

    init(configDirectory: String, environment: @escaping (String) -> String?, _ diagnostics: Diagnostics) {
        self.configDirectory = configDirectory
        self.environment = environment
        self.diagnostics = diagnostics
    }

    /// `secret_file`: the file's raw bytes, one trailing newline (`\n`) dropped — what
    /// `echo "$SECRET" > file` leaves. Relative to the config file's folder.
    func secretFile(_ node: ConfigNode) -> [UInt8]? {
        guard let path = filePath(node) else { return nil }
        switch FileContents.bytes(ConfigPaths.join(configDirectory, path)) {
        case .failure(let error):
            diagnostics.error(node, "cannot read \(quoted(path)): \(error.message)")
            return nil
        case .success(var bytes):
            if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
            guard !bytes.isEmpty else {
                diagnostics.error(node, "the secret in \(quoted(path)) is empty: anyone could sign tokens with it")
                return nil
            }
            return bytes
        }
    }

    /// `secret_env`: the value of the environment variable (its UTF-8 bytes) when the config
    /// is loaded; a reload reads it again.
    func secretEnv(_ node: ConfigNode) -> [UInt8]? {
        guard let name = node.string(diagnostics) else { return nil }
        guard Self.isEnvironmentName(name) else {
            diagnostics.error(node, "expected an environment variable name like GATEHOUSE_JWT_SECRET, got \(quoted(name))")
            return nil
        }
        guard let value = environment(name) else {
            diagnostics.error(node, "the environment variable \(name) is not set")
            return nil
        }
        guard !value.isEmpty else {
            diagnostics.error(node, "the environment variable \(name) is empty: anyone could sign tokens with it")
            return nil
        }
        return Array(value.utf8)
    }

    /// `jwks_file`: a JWK Set document (RFC 7517 §5). Keys it skips are warnings.
    func jwksFile(_ node: ConfigNode) -> JWKSet? {
        guard let path = filePath(node) else { return nil }
        switch FileContents.bytes(ConfigPaths.join(configDirectory, path)) {
        case .failure(let error):
            diagnostics.error(node, "cannot read \(quoted(path)): \(error.message)")
            return nil
        case .success(let bytes):
            do throws(JWKSetError) {
                let set = try JWKSet(jwksJSON: bytes)
                for warning in set.warnings { diagnostics.warning(node, "\(quoted(path)): \(warning)") }
                return set
            } catch {
                diagnostics.error(node, "\(quoted(path)): \(error.description)")
                return nil
            }
        }
    }

    /// `jwks_url`: fetched later (SPEC §5.2); only its syntax is checked here.
    func jwksURL(_ node: ConfigNode) -> String? {
        guard let text = node.string(diagnostics) else { return nil }
        switch AddressSyntax.fetchURL(text) {
        case .success(let url): return url
        case .failure(let error):
            diagnostics.error(node, error.message)
            return nil
        }
    }

    private func filePath(_ node: ConfigNode) -> String? {
        guard let path = node.string(diagnostics) else { return nil }
        guard !path.isEmpty else {
            diagnostics.error(node, "expected a file path, got \"\"")
            return nil
        }
        return path
    }

    /// POSIX portable names: letters, digits and `_`, not starting with a digit.
    static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || ("A"..."Z").contains($0)
            || ("a"..."z").contains($0) || ("0"..."9").contains($0)) }
    }
}
