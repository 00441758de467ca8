import Foundation
import XCTest
import GatehouseTLS
@testable import GatehouseConfig

/// `gatehouse check` output for whole config files, compared with `Golden/<case>.expected`
/// (stderr then stdout). The config is loaded by absolute path and the Golden folder prefix
/// is removed from the output, so the files show paths as an operator in that folder would
/// see them. On a mismatch the test writes `Golden/<case>.actual`: review it, then rename it.
final class GoldenCheckTests: XCTestCase {
    static let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Golden").path

    func testFullValidConfigIsValid() { assertGolden("valid_full") }
    func testEmptyConfigIsValidButWarnsThatNothingIsRouted() { assertGolden("empty") }
    func testUnknownKeysAreErrorsAtEveryLevelAndListTheValidKeys() { assertGolden("unknown_key") }
    func testRateLimitProblemsAreErrorsAtTheirValueAndUselessLimitsWarn() { assertGolden("rate_limits_problems") }
    func testBadDurationsNameTheKeyAndShowTheAcceptedForms() { assertGolden("bad_duration") }
    func testBadSizesAndTooSmallHeaderLimitAreErrors() { assertGolden("bad_size") }
    func testUnknownUpstreamListsTheDefinedOnes() { assertGolden("unknown_upstream") }
    func testDuplicateRouteNamePointsAtTheFirstDefinition() { assertGolden("duplicate_route_name") }
    func testBadGlobsAndMissingPathAreReportedAtTheValue() { assertGolden("bad_glob") }
    func testKeysNotBuiltYetAreRefusedNotIgnored() { assertGolden("not_supported") }
    func testTLSWithACertificateAndItsKeyIsValid() { assertGolden("tls_valid") }
    func testTLSKeyThatDoesNotBelongToTheCertificateIsAnError() { assertGolden("tls_problems") }
    func testTLSFilesThatCannotBeReadAndUnknownTLSKeysAreErrors() { assertGolden("tls_unreadable") }
    func testTLSCertificateFileWithoutPEMIsAnError() { assertGolden("tls_not_pem") }
    func testFullValidAuthenticationConfigIsValid() { assertGolden("jwt_valid_full") }
    func testNoneAlgorithmIsRefusedInAnyLetterCase() { assertGolden("jwt_none_algorithm") }
    func testUnknownAlgorithmListsTheValidNames() { assertGolden("jwt_unknown_algorithm") }
    func testEveryAlgorithmNeedsAPossibleKeyAndEveryKeySourceAnAlgorithm() { assertGolden("jwt_missing_key_source") }
    func testShortHMACSecretIsAWarningThatNeverShowsTheSecret() { assertGolden("jwt_short_secret") }
    func testUnsetSecretEnvironmentVariableIsAnError() { assertGolden("jwt_secret_env_unset") }
    func testKeyFileURLAndIssuerProblemsAreReportedAtTheirKey() { assertGolden("jwt_problems") }
    func testRouteIssuerMustBeDefinedInJWTIssuers() { assertGolden("route_unknown_issuer") }
    func testRoutesNeedingACallerWithoutJWTSectionWarnAndIssuersIsAnError() { assertGolden("route_issuers_without_jwt") }
    func testRequireWithAuthNoneIsAContradiction() { assertGolden("require_with_auth_none") }
    func testEmptyRequireAndBadRequireListsAreErrors() { assertGolden("require_empty") }
    func testClaimConditionValuesMustBeScalars() { assertGolden("require_bad_claims") }
    func testWildcardOriginWithCredentialsAndOtherCORSProblemsAreErrors() { assertGolden("cors_wildcard_credentials") }
    func testRouteCORSTrueIsAnErrorThatAsksForABlockOrFalse() { assertGolden("route_cors_true") }
    func testLoginRedirectMustBeALocalPathOrAnHTTPSURL() { assertGolden("bad_login_redirect") }
    func testIdentityHeaderDuplicatesAndReservedNamesAreErrors() { assertGolden("identity_header_duplicates") }
    func testYAMLSyntaxErrorIsOneProblemAtTheParserPosition() { assertGolden("yaml_syntax_error") }
    func testDuplicateYAMLKeyIsReportedAtTheRepeatedKey() { assertGolden("duplicate_yaml_key") }
    func testPolicyFileProblemsAreReportedAtTheirRelativePath() { assertGolden("policy_files") }
    func testShadowedRouteIsAWarning() { assertGolden("shadowed_route") }
    func testMissingFileIsOneProblemAtLineZero() { assertGolden("missing_file") }
    func testSeveralErrorsAreAllReported() { assertGolden("many_errors") }
    func testBadAddressesURLsAndOverlappingAdminListener() { assertGolden("bad_addresses") }
    func testWrongValueTypesAreReported() { assertGolden("bad_types") }
    func testFullValidSessionsConfigIsValid() { assertGolden("sessions_valid_full") }
    func testWeakPasswordSchemesAreErrorsAtTheirLineOfTheUsersFile() { assertGolden("sessions_weak_scheme") }
    func testMissingUsersFileIsAnErrorAtItsKey() { assertGolden("sessions_missing_users_file") }
    func testSameSiteNoneWithoutSecureIsAnError() { assertGolden("sessions_same_site_none") }
    func testAbsoluteTimeoutShorterThanIdleTimeoutIsAnError() { assertGolden("sessions_absolute_shorter_than_idle") }
    func testBadRedisURLIsAnErrorThatNeverShowsThePassword() { assertGolden("sessions_bad_redis_url") }
    func testSecureCookieWithoutTLSIsAWarning() { assertGolden("sessions_secure_without_tls") }
    func testRouteMatchingAPOSTToAGatewayEndpointIsAWarning() { assertGolden("sessions_route_shadows_endpoint") }
    func testRolesOfAUserNotInTheUsersFileAreAWarning() { assertGolden("sessions_unknown_role_user") }
    func testEverySessionsValueProblemIsReported() { assertGolden("sessions_bad_values") }
    func testCookiePrefixRulesAndEndpointsOutsideTheCookiePath() { assertGolden("sessions_cookie_paths") }
    func testSessionsWithoutLoginAndAnEndpointTurnedOff() { assertGolden("sessions_without_login") }
    func testYAMLAnchorIsRefusedWhereItIsDefined() { assertGolden("yaml_anchor_alias") }
    func testYAMLAliasIsRefused() { assertGolden("yaml_alias") }
    func testYAMLMergeKeyIsRefused() { assertGolden("yaml_merge_key") }
    func testYAMLBombInAPolicyFileIsRefusedAtItsFirstAnchor() { assertGolden("yaml_bomb") }

    /// A 5 MiB config (SPEC §3.2: at most 4 MiB) is refused before it is read. Made at run time
    /// in a temporary folder (no 5 MiB file in the repository); `big_file.expected` has no `.yaml`.
    func testConfigFileOver4MiBIsRefusedUnread() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-golden-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/big_file.yaml"
        let line = "# " + String(repeating: "x", count: 1021) + "\n"  // 1 KiB
        try String(repeating: line, count: 5 * 1024).write(toFile: path, atomically: false, encoding: .utf8)
        let result = ConfigLoader.load(path: path, cpuCount: 2, tlsCheck: ServerTLSContext.check)
        let report = CheckReport.render(result: result, configPath: path)
        let actual = (report.stderr + report.stdout).replacingOccurrences(of: "\(directory)/", with: "")
        let expected = try String(contentsOfFile: "\(Self.goldenDirectory)/big_file.expected", encoding: .utf8)
        XCTAssertEqual(actual, expected)
        XCTAssertEqual(report.exitCode, 1)
    }
    func testGatewayEndpointsNeedDistinctPaths() { assertGolden("sessions_duplicate_paths") }

    /// Every `<case>.yaml` in Golden has its `<case>.expected`, so no case is silently skipped.
    func testEveryGoldenConfigHasAnExpectedOutput() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.goldenDirectory)
        for file in files where file.hasSuffix(".yaml") {
            let name = String(file.dropLast(".yaml".count))
            XCTAssertTrue(files.contains("\(name).expected"), "Golden/\(name).yaml has no \(name).expected")
        }
    }

    private func assertGolden(_ name: String, file: StaticString = #filePath, line: UInt = #line) {
        let directory = Self.goldenDirectory
        let configPath = "\(directory)/\(name).yaml"
        let result = ConfigLoader.load(path: configPath, cpuCount: 2, tlsCheck: ServerTLSContext.check)
        let report = CheckReport.render(result: result, configPath: configPath)
        let actual = (report.stderr + report.stdout).replacingOccurrences(of: "\(directory)/", with: "")

        XCTAssertEqual(report.exitCode, result.errors.isEmpty ? 0 : 1, file: file, line: line)
        XCTAssertEqual(result.config == nil, !result.errors.isEmpty, "a config exactly when there are no errors",
                       file: file, line: line)

        let expectedPath = "\(directory)/\(name).expected"
        let actualPath = "\(directory)/\(name).actual"
        let expected = try? String(contentsOfFile: expectedPath, encoding: .utf8)
        if expected == actual {
            try? FileManager.default.removeItem(atPath: actualPath)
            return
        }
        try? actual.write(toFile: actualPath, atomically: true, encoding: .utf8)
        XCTFail("""
            \(name): output differs from Golden/\(name).expected (written to Golden/\(name).actual)
            --- expected
            \(expected ?? "<missing>")--- actual
            \(actual)
            """, file: file, line: line)
    }
}
