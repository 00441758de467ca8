import GatehouseCore
import GatehousePolicy

/// Readers for the `server`, `admin` and `access_log` sections (SPEC §2). Each returns settings
/// with defaults for whatever is unset or invalid; the invalid parts are reported, and the
/// loader returns no config when anything was.
enum SettingsSections {
    static let defaultListen = [ListenAddress(host: "0.0.0.0", port: 8080)]
    /// Beyond this many event loops a gateway gains nothing but contention.
    static let maxWorkers = 64

    static func server(_ node: ConfigNode?, configDirectory: String, cwd: String, cpuCount: Int,
                       tlsCheck: ServerTLSFiles.Check = ServerTLSFiles.readable, _ diagnostics: Diagnostics) -> ServerSettings {
        let fields = node?.fields(ConfigKeys.server, diagnostics)
        var settings = ServerSettings(
            listen: defaultListen, workers: min(max(cpuCount, 1), maxWorkers),
            maxHeaderBytes: 16 << 10, maxBodyBytes: 10 << 20, readTimeoutMs: 30_000, shutdownGraceMs: 10_000,
            trustedProxies: [], publicOrigin: nil, pathPolicy: .strict)
        guard let fields else { return settings }

        if let node = fields["listen"], let listen = listenAddresses(node, diagnostics) {
            settings.listen = listen
        }
        if let node = fields["workers"], let workers = node.int(diagnostics) {
            if (0...maxWorkers).contains(workers) {
                if workers > 0 { settings.workers = workers }
            } else {
                diagnostics.error(node, "must be from 0 to \(maxWorkers) (0: one per core), got \(workers)")
            }
        }
        if let node = fields["max_header_bytes"], let bytes = node.size(diagnostics) {
            if bytes >= 1 << 10 {
                settings.maxHeaderBytes = bytes
            } else {
                diagnostics.error(node, "must be at least 1KiB, got \(node.described)")
            }
        }
        if let bytes = fields["max_body_bytes"]?.size(diagnostics) { settings.maxBodyBytes = bytes }
        if let ms = fields["read_timeout"]?.duration(diagnostics) { settings.readTimeoutMs = ms }
        if let ms = fields["shutdown_grace"]?.duration(diagnostics) { settings.shutdownGraceMs = ms }
        if let ms = fields["header_timeout"]?.duration(diagnostics) { settings.headerTimeoutMs = ms }
        if let node = fields["tunnel_idle_timeout"], let ms = node.duration(diagnostics) {
            if ms >= 1_000 {
                settings.tunnelIdleTimeoutMs = ms
            } else {
                diagnostics.error(node, "must be at least 1s, got \(node.described)")
            }
        }
        if let node = fields["max_connections"], let count = node.int(diagnostics) {
            if (0...1_000_000).contains(count) {
                settings.maxConnections = count
            } else {
                diagnostics.error(node, "must be from 0 to 1000000 (0: derived from the open-file limit), got \(count)")
            }
        }
        if let node = fields["trusted_proxies"], let items = node.list(diagnostics) {
            settings.trustedProxies = items.compactMap { item in
                guard let text = item.string(diagnostics) else { return nil }
                guard let cidr = CIDR(text) else {
                    diagnostics.error(item, "expected an address or network like 10.0.0.0/8 or ::1/128, got \(quoted(text))")
                    return nil
                }
                return cidr
            }
        }
        if let node = fields["public_origin"], let text = node.string(diagnostics) {
            switch AddressSyntax.origin(text) {
            case .success(let origin): settings.publicOrigin = origin
            case .failure(let error): diagnostics.error(node, error.message)
            }
        }
        if let policy = fields["path_policy"]?.oneOf(PathPolicy.self, diagnostics) { settings.pathPolicy = policy }
        if let node = fields["tls"] {
            settings.tls = tls(node, configDirectory: configDirectory, cwd: cwd, tlsCheck: tlsCheck, diagnostics)
        }
        return settings
    }

    /// `server.tls: {cert, key}`, both required; the files are loaded here (as `run` will load
    /// them), so that `check` reports an unreadable file, a file without PEM, or a key that does
    /// not belong to the certificate, at the key that names it.
    private static func tls(_ node: ConfigNode, configDirectory: String, cwd: String, tlsCheck: ServerTLSFiles.Check,
                            _ diagnostics: Diagnostics) -> ServerTLSFiles? {
        guard let fields = node.fields(ConfigKeys.serverTLS, diagnostics) else { return nil }
        let certNode = fields.required("cert", diagnostics)
        let keyNode = fields.required("key", diagnostics)
        guard let certNode, let keyNode, let cert = certNode.string(diagnostics), let key = keyNode.string(diagnostics)
        else { return nil }
        let files = ServerTLSFiles(cert: ConfigPaths.absolute(cert, relativeTo: configDirectory, cwd: cwd),
                                   key: ConfigPaths.absolute(key, relativeTo: configDirectory, cwd: cwd))
        switch tlsCheck(files) {
        case nil:
            return files
        case .cert(let problem)?:
            diagnostics.error(certNode, problem)
        case .key(let problem)?:
            diagnostics.error(keyNode, problem)
        }
        return nil
    }

    /// A non-empty list of distinct listen addresses.
    private static func listenAddresses(_ node: ConfigNode, _ diagnostics: Diagnostics) -> [ListenAddress]? {
        guard let items = node.list(diagnostics) else { return nil }
        guard !items.isEmpty else {
            diagnostics.error(node, "at least one address is needed")
            return nil
        }
        var addresses: [ListenAddress] = []
        var firstSeen: [ListenAddress: String] = [:]
        for item in items {
            guard let text = item.string(diagnostics) else { continue }
            switch AddressSyntax.listenAddress(text) {
            case .failure(let error):
                diagnostics.error(item, error.message)
            case .success(let address):
                if let first = firstSeen[address] {
                    diagnostics.error(item, "duplicate address \(address), already in \(first)")
                    continue
                }
                firstSeen[address] = item.path
                addresses.append(address)
            }
        }
        return addresses
    }

    /// nil when the section is absent. The admin listener must not share an address with a
    /// public one (SPEC §8): same port and same host, or either host the any-address.
    static func admin(_ node: ConfigNode?, publicListen: [ListenAddress], _ diagnostics: Diagnostics) -> AdminSettings? {
        guard let fields = node?.fields(ConfigKeys.admin, diagnostics),
              let listenNode = fields.required("listen", diagnostics),
              let text = listenNode.string(diagnostics) else { return nil }
        switch AddressSyntax.listenAddress(text) {
        case .failure(let error):
            diagnostics.error(listenNode, error.message)
            return nil
        case .success(let address):
            let clash = publicListen.first { other in
                other.port == address.port && (other.host == address.host
                    || AddressSyntax.isWildcard(other.host) || AddressSyntax.isWildcard(address.host))
            }
            if let clash {
                diagnostics.error(listenNode,
                                  "\(address) overlaps server.listen \(clash); the admin endpoints must never be on the public listener")
                return nil
            }
            return AdminSettings(listen: address)
        }
    }

    /// `path` is `stdout` or a file, made absolute against the config file's directory.
    static func accessLog(_ node: ConfigNode?, configDirectory: String, cwd: String,
                          _ diagnostics: Diagnostics) -> AccessLogSettings {
        var settings = AccessLogSettings()
        guard let fields = node?.fields(ConfigKeys.accessLog, diagnostics) else { return settings }
        if let node = fields["path"], let path = node.string(diagnostics) {
            if path.isEmpty {
                diagnostics.error(node, "expected stdout or a file path, got \(quoted(path))")
            } else if path != "stdout" {
                settings.path = ConfigPaths.absolute(path, relativeTo: configDirectory, cwd: cwd)
            }
        }
        if let format = fields["format"]?.oneOf(AccessLogSettings.Format.self, diagnostics) { settings.format = format }
        return settings
    }
}
