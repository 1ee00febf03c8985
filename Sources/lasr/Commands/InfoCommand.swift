import ArgumentParser
import Foundation
import LasrAudio

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print the format, sample rate, channels and duration of audio files.",
        discussion: """
            Prints one line per file: PATH, container, sample encoding, sample rate, \
            channels, duration in seconds and frames (samples per channel). A directory \
            stands for the audio files under it. A file that cannot be read gets one \
            error line on stderr; the others are still printed, and the exit status is \
            1 if any failed.
            """)

    @Argument(help: ArgumentHelp("Audio files or directories.", valueName: "file"))
    var files: [String]

    func run() throws {
        var outcome = BatchOutcome()
        for entry in AudioInputs.expand(files) {
            do {
                let info = try AudioFile.info(entry.get())
                let channels = info.channels == 1 ? "1 channel" : "\(info.channels) channels"
                let length = info.frames.map { String(format: "%.3f s (%d frames)", Double($0) / Double(info.sampleRate), $0) }
                    ?? "length unknown"
                print("\(info.path): \(info.container), \(info.encoding), \(info.sampleRate) Hz, \(channels), \(length)")
                for warning in info.warnings { Terminal.warn(warning.description) }
                outcome.succeeded()
            } catch {
                outcome.failed(error)
            }
        }
        try outcome.finish()
    }
}
