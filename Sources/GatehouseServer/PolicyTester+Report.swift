import GatehouseCore
import GatehouseConfig

/// Comparing a case's expectations, and the output of `gatehouse test` (SPEC §15.1).
extension PolicyTester {
    /// One `expected X, got Y` per expectation that does not hold.
    static func compare(_ expect: PolicyTestExpectation, _ observed: PolicyTestObservation) -> [String] {
        var out: [String] = []
        if let status = expect.status, status != observed.status {
            out.append("expected status \(status), got \(observed.status.map(String.init) ?? "none (\(observed.decision))")")
        }
        if let route = expect.route, route != observed.route {
            out.append("expected route \(show(route)), got \(show(observed.route))")
        }
        if let reason = expect.reason, reason != observed.reason {
            out.append("expected reason \(show(reason?.rawValue)), got \(show(observed.reason?.rawValue))")
        }
        if let wanted = expect.upstreamHeaders {
            guard let sent = observed.upstreamHeaders else {
                out.append("expected upstream headers, got no forwarded request (\(observed.decision))")
                return out
            }
            for (name, value) in wanted {
                let got = sent.filter { UpstreamHeaders.sameName($0.0, name.lowercasedASCII) }.map(\.1)
                let actual = got.isEmpty ? nil : got.joined(separator: ", ")
                if actual != value {
                    out.append("expected upstream header \(name) \(show(value)), got \(show(actual))")
                }
            }
        }
        return out
    }

    private static func show(_ value: String?) -> String {
        guard let value else { return "none" }
        var out = "\""
        for scalar in value.unicodeScalars {
            if scalar == "\"" || scalar == "\\" { out += "\\" }
            if scalar.value < 0x20 || scalar.value == 0x7F { out += "\\x" + String(scalar.value, radix: 16) } else { out.unicodeScalars.append(scalar) }
        }
        return out + "\""
    }

    /// `ok NAME` or `FAIL NAME: expected …, got …; …` per result, then `N passed, M failed`.
    public static func report(_ results: [PolicyTestResult]) -> String {
        var text = ""
        for result in results {
            if result.passed {
                text += "ok \(result.testCase.name)\n"
            } else {
                text += "FAIL \(result.testCase.name): \(result.mismatches.joined(separator: "; "))\n"
            }
        }
        let failed = results.count { !$0.passed }
        return text + "\(results.count - failed) passed, \(failed) failed\n"
    }

    /// JUnit XML (the Ant schema Jenkins, GitLab and GitHub read): one `testsuite` per cases
    /// file, one `testcase` per case, a `failure` with the mismatches for a failed one.
    public static func junit(_ results: [PolicyTestResult]) -> String {
        var files: [String] = []
        for result in results where !files.contains(result.testCase.location.file) { files.append(result.testCase.location.file) }
        let failures = results.count { !$0.passed }
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites name=\"gatehouse test\" tests=\"\(results.count)\" failures=\"\(failures)\">\n"
        for file in files {
            let inFile = results.filter { $0.testCase.location.file == file }
            xml += "  <testsuite name=\"\(XMLText.escaped(file))\" tests=\"\(inFile.count)\" "
                + "failures=\"\(inFile.count { !$0.passed })\" errors=\"0\">\n"
            for result in inFile {
                xml += "    <testcase name=\"\(XMLText.escaped(result.testCase.name))\" classname=\"\(XMLText.escaped(file))\""
                if result.passed {
                    xml += "/>\n"
                } else {
                    let message = result.mismatches.joined(separator: "; ")
                    xml += ">\n      <failure message=\"\(XMLText.escaped(message))\" type=\"mismatch\">"
                        + "\(XMLText.escaped("\(result.testCase.location): \(message)"))</failure>\n    </testcase>\n"
                }
            }
            xml += "  </testsuite>\n"
        }
        return xml + "</testsuites>\n"
    }
}

/// Text for XML 1.0 content and attribute values: markup characters escaped, and characters
/// XML 1.0 cannot carry at all (most C0 controls, U+FFFE, U+FFFF) replaced by U+FFFD.
enum XMLText {
    static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out += "&#\(scalar.value);"
            case _ where scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF:
                out += "\u{FFFD}"
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

extension String {
    /// ASCII letters lowercased, every other byte as it is.
    var lowercasedASCII: String {
        String(decoding: utf8.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}
