import Foundation
import LasrCore

/// Finds the model directory a command should use.
enum ModelLocator {
    /// `explicit` if given; else `$LASR_MODEL`; else `models/default` in the current
    /// directory; else `models/default` of the checkout the executable was built in.
    static func resolve(_ explicit: String?) throws -> String {
        if let explicit { return explicit }
        if let env = ProcessInfo.processInfo.environment["LASR_MODEL"], !env.isEmpty { return env }
        var candidates = ["models/default"]
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        // .build/<config>/lasr or .build/<triple>/<config>/lasr inside a checkout.
        var dir = executable.deletingLastPathComponent()
        for _ in 0..<4 {
            dir = dir.deletingLastPathComponent()
            candidates.append(dir.appendingPathComponent("models/default").path)
        }
        for candidate in candidates where FileManager.default.fileExists(atPath: candidate + "/config.yaml") {
            return candidate
        }
        throw LasrError(.fileNotFound, path: "models/default",
                        "no model found (looked in: \(candidates.joined(separator: ", "))); pass --model DIR or set LASR_MODEL")
    }
}
