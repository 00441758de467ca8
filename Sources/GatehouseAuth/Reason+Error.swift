import GatehouseCore

// `JWTVerifier.verify` returns `Result<VerifiedToken, Reason>`, and `Result` wants an `Error`.
// This conformance belongs in GatehouseCore next to `Reason`; move it there (and delete this
// file) when that module is next touched.
extension Reason: Error {}
