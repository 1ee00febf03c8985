import ArgumentParser

/// The `lasr` command: a thin shell over the library; each subcommand lives in `Commands/`.
@main
struct Lasr: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lasr",
        abstract: "Offline speech recognition with word timings and attention alignments.",
        discussion: """
            lasr reads audio through libsndfile (WAV, FLAC, Ogg Vorbis, Ogg Opus, …, any \
            rate and channel count), resamples it to 16 kHz mono and computes log-mel \
            features with FFTW. Run 'lasr help SUBCOMMAND' for the options of each.
            """,
        version: "0.1.0",
        subcommands: [TranscribeCommand.self, StreamCommand.self, AlignCommand.self, EvalCommand.self, InfoCommand.self, FeaturesCommand.self, BenchCommand.self, ModelsCommand.self, ServeCommand.self])
}
