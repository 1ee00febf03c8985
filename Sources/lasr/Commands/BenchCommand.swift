import ArgumentParser
import Foundation
import LasrAudio
import LasrCore
import LasrFeatures

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the speed and memory of lasr's stages on this machine.",
        discussion: """
            Stages: 'audio' writes a synthetic 44.1 kHz stereo 16-bit WAV of --audio-seconds \
            to the temporary directory, then times decoding, downmixing and resampling it to \
            16 kHz (its peak memory is measured from a reset of the peak RSS, Linux only). \
            'features' times log-mel extraction on one thread over --feature-seconds of \
            16 kHz audio. Speeds are given as real-time factors: seconds of audio processed \
            per second of wall time. docs/benchmarks.md records the numbers and the machine.
            """)

    enum Stage: String, ExpressibleByArgument, CaseIterable {
        case audio, features, all
    }

    @Option(help: "Which stage to measure: \(Stage.allCases.map(\.rawValue).joined(separator: ", ")).")
    var stage: Stage = .all

    @Option(help: "Length of the synthetic file for the audio stage, in seconds.")
    var audioSeconds: Int = 3600

    @Option(help: "Audio for the feature stage, in seconds (processed repeatedly for at least 2 s of wall time).")
    var featureSeconds: Int = 60

    func validate() throws {
        guard audioSeconds > 0, featureSeconds > 0 else {
            throw ValidationError("--audio-seconds and --feature-seconds must be positive")
        }
    }

    func run() throws {
        print("lasr bench on \(ProcessInfo.processInfo.activeProcessorCount) cores")
        if stage == .features || stage == .all { try benchFeatures() }
        if stage == .audio || stage == .all { try benchAudio() }
    }

    private func benchFeatures() throws {
        let rate = 16000
        let samples = BenchSignal.speechLike(seconds: featureSeconds, rate: rate)
        let extractor = LogMelExtractor()
        _ = extractor.compute(Array(samples.prefix(rate)))  // warm-up
        var runs = 0
        var frames = 0
        let start = Date()
        repeat {
            frames += extractor.compute(samples).rows
            runs += 1
        } while Date().timeIntervalSince(start) < 2
        let elapsed = Date().timeIntervalSince(start)
        let audioSeconds = Double(runs * samples.count) / Double(rate)
        print(String(format: "features  %.0f s of audio in %.3f s: %.0fx real time, %.2f µs per frame (1 thread)",
                     audioSeconds, elapsed, audioSeconds / elapsed, elapsed / Double(frames) * 1e6))
    }

    private func benchAudio() throws {
        let inRate = 44100
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lasr-bench-\(getpid()).wav").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try AudioFileWriter(path: path, sampleRate: inRate, channels: 2, encoding: .wavInt16)
        let block = BenchSignal.speechLike(seconds: 10, rate: inRate)
        var interleaved = [Float](repeating: 0, count: block.count * 2)
        for i in 0..<block.count { interleaved[2 * i] = block[i]; interleaved[2 * i + 1] = 0.5 * block[i] }
        for _ in 0..<(audioSeconds / 10) { try writer.write(interleaved) }
        let rest = (audioSeconds % 10) * inRate * 2
        if rest > 0 { try writer.write(Array(interleaved.prefix(rest))) }
        writer.close()

        let baseline = ResourceUsage.residentBytes()
        let canReset = ResourceUsage.resetPeak()
        let start = Date()
        let audio = try AudioFile.load(path)
        let elapsed = Date().timeIntervalSince(start)
        let peak = ResourceUsage.peakResidentBytes()
        let decodedMB = Double(audio.samples.count * MemoryLayout<Float>.size) / 1e6
        print(String(format: "audio     %d s of 44.1 kHz stereo WAV → 16 kHz mono in %.2f s: %.0fx real time",
                     audioSeconds, elapsed, Double(audioSeconds) / elapsed))
        if canReset {
            print(String(format: "          peak memory while loading: %.1f MB above the %.1f MB before (decoded samples: %.1f MB)",
                         Double(peak - baseline) / 1e6, Double(baseline) / 1e6, decodedMB))
        } else {
            print(String(format: "          process peak memory: %.1f MB (decoded samples: %.1f MB)", Double(peak) / 1e6, decodedMB))
        }
    }
}

/// Deterministic test signals with a speech-like spectrum (voiced harmonics and noise).
enum BenchSignal {
    static func speechLike(seconds: Int, rate: Int) -> [Float] {
        var out = [Float](repeating: 0, count: seconds * rate)
        var seed: UInt32 = 12345
        for i in 0..<out.count {
            let t = Double(i) / Double(rate)
            let pitch = 120 + 30 * sin(2 * Double.pi * 0.5 * t)
            var voiced = 0.0
            for h in 1...8 { voiced += sin(2 * Double.pi * pitch * Double(h) * t) / Double(h) }
            seed = seed &* 1664525 &+ 1013904223
            let noise = Double(Int32(bitPattern: seed)) / Double(Int32.max)
            let envelope = 0.5 + 0.5 * sin(2 * Double.pi * 3 * t)
            out[i] = Float(0.1 * envelope * voiced + 0.01 * noise)
        }
        return out
    }
}
