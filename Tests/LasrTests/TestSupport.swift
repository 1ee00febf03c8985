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

    /// How far float32 results may move when only the order of their sums changes.
    ///
    /// OpenBLAS picks its kernel, and with it the order in which a product adds its
    /// terms, by CPU and by matrix shape (a wider beam is a taller batch), so the same
    /// value computed twice can differ in its last bits. Tests compare such values
    /// within these bounds, derived from the arithmetic, never within a number that
    /// only one machine's summation order happens to meet.
    enum Float32Bounds {
        /// Unit roundoff of float32, u = 2⁻²⁴.
        static let unitRoundoff = Double(Float.ulpOfOne) / 2

        /// Any k-term dot product in float32, in any order, is within
        /// γ_k·Σ|xᵢyᵢ| of the exact one, γ_k = k·u / (1 − k·u) (Higham, *Accuracy and
        /// Stability of Numerical Algorithms*, §3.1). Two such results lie within twice that.
        static func dotProduct(terms k: Int, absoluteSum: Double) -> Double {
            let ku = Double(k) * unitRoundoff
            return ku / (1 - ku) * absoluteSum
        }

        /// A beam score: the decoder's float32 log-probabilities of its tokens, summed in
        /// double (then divided by `normalizer`, the length normalization). Each one passes
        /// through a few hundred products and a recurrence, whose reordering was measured
        /// at well under one ulp per token; 16 ulps of each term's magnitude bounds it.
        static func logProbabilitySum(_ logProbs: [Double], normalizer: Double = 1) -> Double {
            let ulp = 2 * unitRoundoff
            return logProbs.reduce(0) { $0 + 16 * ulp * max(1, abs($1)) } / normalizer
        }
    }

    /// Writes interleaved samples through the library's writer.
    static func writeAudio(_ path: String, samples: [Float], rate: Int, channels: Int,
                           encoding: AudioFileWriter.Encoding) throws {
        let writer = try AudioFileWriter(path: path, sampleRate: rate, channels: channels, encoding: encoding)
        try writer.write(samples)
        writer.close()
    }

    /// Writes float32 tensors as a safetensors file (8-byte header length, JSON header, data).
    static func writeSafeTensors(_ path: String, _ tensors: [(name: String, shape: [Int], values: [Float])]) throws {
        var entries: [String] = []
        var data = Data()
        for t in tensors {
            precondition(t.shape.reduce(1, *) == t.values.count, t.name)
            let start = data.count
            t.values.withUnsafeBytes { data.append(contentsOf: $0) }
            entries.append("\"\(t.name)\":{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(start),\(data.count)]}")
        }
        var header = Data(("{" + entries.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var file = Data()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(header)
        file.append(data)
        try file.write(to: URL(fileURLWithPath: path))
    }

    /// CRC-32 (zlib's: reflected polynomial 0xEDB88320), written out here so the tests
    /// check the engine's vocabulary checksum against an independent implementation.
    static func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
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
