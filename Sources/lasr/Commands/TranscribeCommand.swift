import ArgumentParser
import Foundation
import LasrAudio
import LasrCore
import LasrDecoding
import LasrModel
import LasrNN
import LasrOutput

/// `--output-format txt,json,…`: a comma-separated list, `all` for every format.
struct OutputFormats: ExpressibleByArgument {
    let formats: [TranscriptFormat]

    init?(argument: String) {
        var formats: [TranscriptFormat] = []
        for name in argument.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
            if name == "all" { formats = TranscriptFormat.allCases; continue }
            guard let format = TranscriptFormat(rawValue: name) else { return nil }
            if !formats.contains(format) { formats.append(format) }
        }
        guard !formats.isEmpty else { return nil }
        self.formats = formats
    }

    static var allValueStrings: [String] { TranscriptFormat.allCases.map(\.rawValue) + ["all"] }
}

struct TranscribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transcribe",
        abstract: "Transcribe audio files with a native lasr model or a converted Whisper model.",
        discussion: """
            Prints the text of each file on stdout, one line per file (prefixed by the \
            file name when there are several). A directory stands for the audio files \
            under it. Audio longer than --segment-seconds is cut at its quietest points \
            and decoded segment by segment. A file that fails gets one error line on \
            stderr; the others are still transcribed, and the exit status is 1 if any failed. \
            A truncated or damaged file is transcribed as far as it decodes, with a \
            "warning:" line on stderr saying what was lost; warnings alone leave the exit \
            status 0 (as sox does), and the json output lists them.
            """)

    @Argument(help: ArgumentHelp("Audio files or directories.", valueName: "file"))
    var files: [String]

    @OptionGroup var decoding: DecodingArguments

    @Option(help: "Files decoded in parallel; one per core unless set.")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Threads for the matrix products of each job (default: the cores left to each job, at least 1). On a busy machine, no more than the idle cores: a product split across threads waits for each to be scheduled.")
    var threads: Int?

    @Option(help: "Longest stretch of audio decoded at once, in seconds.")
    var segmentSeconds: Double = 20

    @Option(help: ArgumentHelp(
        "Write transcript files in these formats, comma-separated: txt, json, srt, vtt, csv, or all. Files are named <input name without extension>.<format>.",
        valueName: "formats"))
    var outputFormat: OutputFormats?

    @Option(help: ArgumentHelp("Directory for the --output-format files (default: the current directory).", valueName: "dir"))
    var outputDir: String?

    @Option(help: ArgumentHelp("Native models: also keep the N best readings of each segment, listed as 'alternatives' in the json output (best first; the text stays the best one's).", valueName: "N"))
    var nBest: Int?

    @Option(help: ArgumentHelp("Also write the alignment dumps (attention, tokens and words CSV, attention SVG) of each input into this directory.", valueName: "dir"))
    var alignments: String?

    func validate() throws {
        if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if segmentSeconds < 2 { throw ValidationError("--segment-seconds must be at least 2") }
        if let nBest, nBest < 1 { throw ValidationError("--n-best must be at least 1") }
    }

    func run() throws {
        let loaded = try decoding.loadAnyModel()
        try decoding.checkAlternatives(nBest, for: loaded)
        let (makeTranscriber, info) = decoding.transcribers(for: loaded, segmentSeconds: segmentSeconds,
                                                             alternatives: nBest ?? 1)
        let formats = outputFormat?.formats ?? (outputDir != nil ? [.txt] : [])
        let directory = outputDir ?? "."
        for dir in [formats.isEmpty ? nil : directory, alignments].compactMap({ $0 }) {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                Terminal.report(LasrError(.invalidArgument, path: dir, "cannot create output directory"))
                throw ExitCode(1)
            }
        }
        let inputs = AudioInputs.expand(files)
        let paths = inputs.compactMap { try? $0.get() }
        // Position in `paths` of each input that is a file.
        var pathIndex: [Int?] = []
        var counter = 0
        for input in inputs {
            if case .success = input { pathIndex.append(counter); counter += 1 } else { pathIndex.append(nil) }
        }
        // One file at a time uses every core for its matrix products; several files
        // are spread over the cores, one thread each, which keeps both busy between
        // the small products of a decoder step.
        let workers = min(jobs, max(paths.count, 1))
        BLAS.setThreads(threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / workers))
        let showProgress = workers == 1
        var results: [Int: Result<Transcript, LasrError>] = [:]
        var outcome = BatchOutcome()
        var nextInput = 0
        func deliverReady() {
            while nextInput < inputs.count {
                switch inputs[nextInput] {
                case .failure(let error):
                    outcome.failed(error)
                case .success(let path):
                    guard let result = results.removeValue(forKey: pathIndex[nextInput]!) else { return }
                    do {
                        let transcript = try result.get()
                        for warning in transcript.warnings { Terminal.warn(warning.description) }
                        print(inputs.count > 1 ? "\(path): \(transcript.text)" : transcript.text)
                        fflush(nil)  // each file's line as soon as it is ready
                        try write(transcript, formats: formats, to: directory, info: info)
                        if let alignments {
                            try AlignmentWriter.write(transcript, name: Self.baseName(path), to: alignments)
                        }
                        outcome.succeeded()
                    } catch {
                        outcome.failed(error)
                    }
                }
                nextInput += 1
            }
        }
        orderedParallelMap(count: paths.count, jobs: workers, makeWorker: {
            let recognizer = makeTranscriber()
            return { i -> Result<Transcript, LasrError> in
                let bar = showProgress ? ProgressBar(label: (paths[i] as NSString).lastPathComponent) : nil
                defer { bar?.finish() }
                do {
                    return .success(try recognizer.transcribe(file: paths[i], progress: bar.map { b in { b.update($0) } }))
                } catch let error as LasrError {
                    return .failure(error)
                } catch {
                    return .failure(LasrError(.readFailed, path: paths[i], "\(error)"))
                }
            }
        }, deliver: { i, result in
            results[i] = result
            deliverReady()
        })
        deliverReady()
        try outcome.finish()
    }

    static func baseName(_ path: String) -> String {
        ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    }

    private func write(_ transcript: Transcript, formats: [TranscriptFormat], to directory: String, info: DecodingInfo) throws {
        for format in formats {
            let target = (directory as NSString).appendingPathComponent(Self.baseName(transcript.source) + "." + format.fileExtension)
            do {
                try TranscriptWriter.render(transcript, as: format, info: info).write(toFile: target, atomically: true, encoding: .utf8)
            } catch {
                throw LasrError(.invalidArgument, path: target, "cannot write transcript: \(error.localizedDescription)")
            }
        }
    }
}

/// A one-line progress bar on stderr, shown only when stderr is a terminal.
final class ProgressBar {
    private let label: String
    private let started = Date()

    init?(label: String) {
        guard isatty(STDERR_FILENO) == 1 else { return nil }
        self.label = label
    }

    func update(_ fraction: Double) {
        // Short inputs finish before a bar would help.
        guard Date().timeIntervalSince(started) > 0.5 || fraction < 1 else { return }
        let width = 30, filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        FileHandle.standardError.write(Data(String(format: "\r%@ %@ %3.0f%%", bar, label, fraction * 100).utf8))
    }

    func finish() {
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
