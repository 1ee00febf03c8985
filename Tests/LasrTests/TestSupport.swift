import Foundation
import LasrAudio
import LasrCore

/// Paths and small audio tools shared by the tests.
enum TestSupport {
    /// The package root, found from this file's location.
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func fixture(_ name: String) -> String {
        packageRoot.appendingPathComponent("Tests/LasrTests/Fixtures").appendingPathComponent(name).path
    }

    /// A fresh empty directory under the system temporary directory.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lasr-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// `count` samples of a sine at `frequency` Hz.
    static func sine(frequency: Double, rate: Int, count: Int, amplitude: Double = 0.5) -> [Float] {
        (0..<count).map { Float(amplitude * sin(2 * Double.pi * frequency * Double($0) / Double(rate))) }
    }

    /// Root mean square of `x[range]`.
    static func rms(_ x: [Float], _ range: Range<Int>? = nil) -> Double {
        let r = range ?? 0..<x.count
        var sum = 0.0
        for i in r { sum += Double(x[i]) * Double(x[i]) }
        return (sum / Double(r.count)).squareRoot()
    }

    static func decibels(_ ratio: Double) -> Double { 20 * log10(ratio) }

    /// Writes interleaved samples through the library's writer.
    static func writeAudio(_ path: String, samples: [Float], rate: Int, channels: Int,
                           encoding: AudioFileWriter.Encoding) throws {
        let writer = try AudioFileWriter(path: path, sampleRate: rate, channels: channels, encoding: encoding)
        try writer.write(samples)
        writer.close()
    }

    /// The built `lasr` executable next to the test bundle.
    static var lasrExecutable: URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("lasr"),
            packageRoot.appendingPathComponent(".build/debug/lasr"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[1]
    }

    struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs `lasr` with `arguments` and collects its output.
    static func runLasr(_ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = lasrExecutable
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read before waiting so a full pipe cannot block the child.
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus,
                   stdout: String(decoding: outData, as: UTF8.self),
                   stderr: String(decoding: errData, as: UTF8.self))
    }
}
