import Foundation
import LasrAudio
import LasrCore
import LasrEval
import LasrModel
import LasrNN
import LasrStream

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The fuzz targets (docs/fuzzing.md): each feeds one input to a real reader the way
/// `lasr` does. A thrown `LasrError` is the reader doing its job; a crash, a sanitizer
/// report, a hang, or an error of another type (every user-caused failure is meant to
/// be a `LasrError`) is a finding.
///
/// The libFuzzer executables (`Sources/fuzz-*`) and the regression tests
/// (`Tests/LasrTests/FuzzRegressionTests.swift`) call the same functions.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// WAV, FLAC, Ogg and the rest through libsndfile: `AudioFile.info` and `AudioFile.load`.
    case audio
    /// The Ogg Opus reader over libogg/libopus, directly (libsndfile would refuse many
    /// inputs before it sees them).
    case opus
    /// `PCMStreamReader`, stdin's raw PCM and WAV stream parser.
    case pcmStream = "pcm-stream"
    /// A model directory as `--model` loads it (`ModelArchitecture`, then `LasrModel` or
    /// `WhisperModel`), one of its config.yaml, model.safetensors, tokens.txt replaced.
    case model
    /// `Manifest.read`, the JSONL manifests of `lasr eval`.
    case manifest

    /// Runs the target on `data`. Errors that are `LasrError`s are swallowed.
    /// Calls are serialized: the targets share one scratch folder.
    public func run(_ data: UnsafeRawBufferPointer) {
        Self.lock.lock()
        defer { Self.lock.unlock() }
        do {
            switch self {
            case .audio: try Self.audio(data)
            case .opus: try Self.opus(data)
            case .pcmStream: try Self.pcmStream(data)
            case .model: try Self.model(data)
            case .manifest: try Self.manifest(data)
            }
        } catch is LasrError {
        } catch {
            fatalError("\(rawValue): \(type(of: error)) is not a LasrError: \(error)")
        }
    }

    /// Runs the target on the bytes of `data`.
    public func run(_ data: [UInt8]) {
        data.withUnsafeBytes { run($0) }
    }

    private static let lock = NSLock()

    // MARK: - Targets

    static func audio(_ data: UnsafeRawBufferPointer) throws {
        let path = Scratch.shared.write(data, name: "input")
        _ = try AudioFile.info(path)
        _ = try AudioFile.load(path)
    }

    static func opus(_ data: UnsafeRawBufferPointer) throws {
        let path = Scratch.shared.write(data, name: "input.opus")
        // The decoder rate comes from the input too, so every rate libopus decodes to is reached.
        let rates = OggOpusFile.decoderRates.sorted()
        guard let file = try OggOpusFile(path: path, sampleRate: rates[data.count % rates.count]) else { return }
        var buffer = [Float](repeating: 0, count: 4096 * file.channels)
        while try file.read(into: &buffer, frames: 4096) > 0 {}
    }

    /// Byte 0 picks the declared format and whether a WAV header is looked for,
    /// byte 1 the size of the pieces the rest arrives in (as reads from a pipe do).
    static func pcmStream(_ data: UnsafeRawBufferPointer) throws {
        guard data.count >= 2 else { return }
        let encodings = PCMEncoding.allCases
        let control = Int(data[0])
        let declared = PCMFormat(encoding: encodings[control % encodings.count], sampleRate: 16000,
                                 channels: 1 + (control / 8) % 2)
        let reader = PCMStreamReader(name: "stdin", declared: declared, detectWAV: control & 0x10 == 0)
        let piece = 1 + Int(data[1])
        var offset = 2
        while offset < data.count {
            let end = min(data.count, offset + piece)
            _ = try reader.push(UnsafeRawBufferPointer(rebasing: data[offset..<end]))
            offset = end
        }
        try reader.finish()
    }

    /// The model directory is one of the tiny fixture models with one of its files
    /// replaced by the input. Byte 0 picks which: the file (config.yaml,
    /// model.safetensors, tokens.txt) is `byte % 3`, the model `byte / 3 % 2` (native,
    /// Whisper). The directory is loaded as `lasr` loads `--model`: its architecture
    /// read first, then the loader for it. A safetensors input is also read tensor by
    /// tensor, whatever the config expects.
    static func model(_ data: UnsafeRawBufferPointer) throws {
        guard let selector = data.first.map(Int.init) else { return }
        let body = UnsafeRawBufferPointer(rebasing: data.dropFirst())
        let model = Scratch.fixtureModels[selector / 3 % Scratch.fixtureModels.count]
        let replaced = Scratch.modelFiles[selector % Scratch.modelFiles.count]
        let directory = Scratch.shared.modelDirectory(model)
        Scratch.shared.write(body, name: model + "/" + replaced)
        defer { Scratch.shared.restore(model, replaced) }
        if replaced == "model.safetensors" {
            let file = try SafeTensorsFile(path: directory + "/model.safetensors")
            for name in file.names { _ = try file.floats(name) }
        }
        switch try ModelArchitecture.of(directory: directory) {
        case .lasr: _ = try LasrModel(directory: directory)
        case .whisper: _ = try WhisperModel(directory: directory)
        }
    }

    static func manifest(_ data: UnsafeRawBufferPointer) throws {
        _ = try Manifest.read(Scratch.shared.write(data, name: "manifest.jsonl"))
    }
}

/// One scratch folder per process, reused by every input: the readers take paths, and
/// writing to tmpfs keeps an execution to microseconds.
final class Scratch: @unchecked Sendable {
    static let shared = Scratch()
    /// Tests/LasrTests/Fixtures/<name> of this checkout, copied into the folder.
    static let fixtureModels = ["tiny-model", "tiny-whisper"]
    static let modelFiles = ["config.yaml", "model.safetensors", "tokens.txt"]

    let folder: String
    /// The fixture models' files, written back after an input replaced one.
    private let fixture: [String: [UInt8]]

    private init() {
        let root = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        folder = "\(root)/lasr-fuzz-\(getpid())"
        var files: [String: [UInt8]] = [:]
        for model in Scratch.fixtureModels {
            try? FileManager.default.createDirectory(atPath: folder + "/" + model, withIntermediateDirectories: true)
            for name in Scratch.modelFiles {
                let path = Scratch.fixtures + "/" + model + "/" + name
                guard let bytes = FileManager.default.contents(atPath: path) else {
                    fatalError("fuzz: cannot read \(path), a fixture the model target starts from")
                }
                files[model + "/" + name] = [UInt8](bytes)
            }
        }
        fixture = files
        for model in Scratch.fixtureModels {
            for name in Scratch.modelFiles { restore(model, name) }
        }
        atexit { try? FileManager.default.removeItem(atPath: Scratch.shared.folder) }
    }

    /// Tests/LasrTests/Fixtures of this checkout.
    static var fixtures: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/LasrTests/Fixtures").path
    }

    func modelDirectory(_ model: String) -> String { folder + "/" + model }

    /// Writes `data` to `name` in the scratch folder and returns its path.
    @discardableResult
    func write(_ data: UnsafeRawBufferPointer, name: String) -> String {
        let path = folder + "/" + name
        guard let file = fopen(path, "wb") else { fatalError("fuzz: cannot write \(path)") }
        if data.count > 0 { fwrite(data.baseAddress!, 1, data.count, file) }
        fclose(file)
        return path
    }

    /// Puts the fixture `model`'s file `name` back.
    func restore(_ model: String, _ name: String) {
        _ = fixture[model + "/" + name]!.withUnsafeBytes { write($0, name: model + "/" + name) }
    }
}
