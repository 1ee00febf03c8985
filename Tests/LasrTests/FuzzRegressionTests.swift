import Foundation
import LasrAudio
import LasrCore
import LasrFuzz
import Testing

/// The fuzz targets' committed inputs, replayed through the same entry points the
/// libFuzzer build calls (docs/fuzzing.md): every seed of Tests/Fuzz/corpus and every
/// finding of Tests/Fuzz/findings must run to the end without crashing. A crash here
/// takes the test process down, which is the failure.
@Suite struct FuzzRegressionTests {
    static let fuzzRoot = TestSupport.packageRoot.appendingPathComponent("Tests/Fuzz")

    static func inputs(_ kind: String, _ target: FuzzTarget) -> [String] {
        let folder = fuzzRoot.appendingPathComponent(kind).appendingPathComponent(target.rawValue).path
        return FileManager.default.fileExists(atPath: folder) ? FuzzReplay.files(folder) : []
    }

    static func bytes(_ path: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test(arguments: FuzzTarget.allCases)
    func corpusReplays(_ target: FuzzTarget) throws {
        let seeds = Self.inputs("corpus", target)
        #expect(seeds.count >= 3, "the \(target.rawValue) target needs a seed corpus")
        for seed in seeds { target.run(try Self.bytes(seed)) }
    }

    @Test(arguments: FuzzTarget.allCases)
    func findingsReplay(_ target: FuzzTarget) throws {
        for finding in Self.inputs("findings", target) { target.run(try Self.bytes(finding)) }
    }

    /// The corpus stays small enough to commit and to replay in a moment.
    @Test func corpusIsSmall() throws {
        var total = 0
        for kind in ["corpus", "findings"] {
            for target in FuzzTarget.allCases {
                for path in Self.inputs(kind, target) {
                    let size = try Self.bytes(path).count
                    #expect(size <= 16384, "\(path) has \(size) bytes")
                    total += size
                }
            }
        }
        #expect(total < 1 << 20)
    }
}
