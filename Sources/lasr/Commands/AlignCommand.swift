import ArgumentParser
import Foundation
import LasrAudio
import LasrCore
import LasrDecoding
import LasrModel
import LasrNN
import LasrOutput

struct AlignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "align",
        abstract: "Dump where the model listened: attention matrices, token and word times.",
        discussion: """
            Decodes each file and writes, for an input NAME, into --output-dir: \
            NAME.attention.csv (segment,token_index,token,frame,time_s,weight: the \
            attention matrix in long form, one row per token × encoder frame), \
            NAME.tokens.csv (segment,token_index,token,start_s,end_s,frame,logprob), \
            NAME.words.csv (segment,word_index,word,start_s,end_s,confidence) and \
            NAME.attention.svg, a heatmap with the alignment path (one per segment, \
            NAME.sK.attention.svg, when the audio was cut into several). Times are \
            seconds from the start of the input. docs/alignments.md describes the files.
            """)

    @Argument(help: ArgumentHelp("Audio files or directories.", valueName: "file"))
    var files: [String]

    @OptionGroup var decoding: DecodingArguments

    @Option(help: ArgumentHelp("Directory for the dumps.", valueName: "dir"))
    var outputDir: String = "."

    @Option(help: "Longest stretch of audio decoded at once, in seconds.")
    var segmentSeconds: Double = 20

    func validate() throws {
        if segmentSeconds < 2 { throw ValidationError("--segment-seconds must be at least 2") }
    }

    func run() throws {
        let loaded = try decoding.loadAnyModel()
        do {
            try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
        } catch {
            Terminal.report(LasrError(.invalidArgument, path: outputDir, "cannot create output directory"))
            throw ExitCode(1)
        }
        let recognizer = decoding.transcribers(for: loaded, segmentSeconds: segmentSeconds).make()
        var outcome = BatchOutcome()
        for entry in AudioInputs.expand(files) {
            do {
                let path = try entry.get()
                let transcript = try recognizer.transcribe(file: path, progress: nil)
                for warning in transcript.warnings { Terminal.warn(warning.description) }
                for written in try AlignmentWriter.write(transcript, name: TranscribeCommand.baseName(path), to: outputDir) {
                    print(written)
                }
                outcome.succeeded()
            } catch {
                outcome.failed(error)
            }
        }
        try outcome.finish()
    }
}
