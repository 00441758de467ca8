// STUB — replaced by the real loader.
/// Loads and validates a config file and everything it names (policy files, ...).
public enum ConfigLoader {
    /// `path` as given on the command line; relative paths inside resolve against its folder.
    /// `cpuCount` resolves `workers: 0`.
    public static func load(path: String, cpuCount: Int) -> ConfigLoadResult { fatalError("stub") }
}
