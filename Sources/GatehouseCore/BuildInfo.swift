/// What this build is: `gatehouse --version` and the `gatehouse_build_info` gauge (SPEC §15.3).
public enum BuildInfo {
    public static let version = "0.1.0"
}
