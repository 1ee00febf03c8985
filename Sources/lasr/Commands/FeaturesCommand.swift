import ArgumentParser
import Foundation
import LasrAudio
import LasrCore
import LasrFeatures

struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Dump the log-mel features of an audio file as CSV.",
        discussion: """
            The audio is downmixed to mono and resampled to the configured rate, then \
            turned into log-mel features as docs/features.md defines them. Output columns: \
            frame (0-based), time_s (the center of the frame's window, in seconds), then \
            mel_0 … mel_{N-1} (natural log of the band energy). One row per frame.
            """)

    @Argument(help: ArgumentHelp("Audio file.", valueName: "file"))
    var file: String

    @Option(name: .long, help: ArgumentHelp(
        "YAML file whose 'features' section sets the parameters (a model's config.yaml or configs/*.yaml). Default: the values of configs/default.yaml.",
        valueName: "path"))
    var config: String?

    @Option(name: [.short, .long], help: ArgumentHelp("Write the CSV here instead of stdout.", valueName: "path"))
    var output: String?

    func run() throws {
        do {
            let featureConfig = try config.map { try ConfigFile.load(FeatureConfig.self, section: "features", from: $0) }
                ?? FeatureConfig()
            let audio = try AudioFile.load(file, sampleRate: featureConfig.sampleRate)
            for warning in audio.warnings { Terminal.warn(warning.description) }
            let features = LogMelExtractor(config: featureConfig).compute(audio.samples)
            if features.rows == 0 {
                throw LasrError(.emptyAudio, path: file, String(
                    format: "%.3f s of audio is shorter than one %d-sample window", audio.duration, featureConfig.winLength))
            }
            let sink = try TextSink(path: output)
            var header = "frame,time_s"
            for m in 0..<features.cols { header += ",mel_\(m)" }
            sink.write(header + "\n")
            let centerOffset = Double(featureConfig.winLength) / 2 / Double(featureConfig.sampleRate)
            for t in 0..<features.rows {
                var line = "\(t)," + String(format: "%.4f", Double(t) * featureConfig.frameShift + centerOffset)
                for m in 0..<features.cols { line += ",\(features[t, m])" }
                sink.write(line + "\n")
            }
            sink.close()
        } catch {
            Terminal.report(error)
            throw ExitCode(1)
        }
    }
}
