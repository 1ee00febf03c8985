import Foundation
import LasrCore
import LasrDecoding
import LasrModel
import LasrOutput

/// One loaded model, served under the name of its directory.
public struct ServedModel: Sendable {
    public enum Kind: Sendable {
        case native(LasrModel)
        case whisper(WhisperModel)
    }

    /// The directory's last path component: what requests name in `model`.
    public let name: String
    public let directory: String
    public let kind: Kind
    /// Loaded at, seconds since 1970 (`created` in `/v1/models`).
    public let created: Int

    /// Loads the model in `directory`, native or Whisper (by its config's `architecture`).
    public init(directory: String) throws {
        let trimmed = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        self.directory = trimmed
        name = URL(fileURLWithPath: trimmed).lastPathComponent
        switch try ModelArchitecture.of(directory: trimmed) {
        case .lasr: kind = .native(try LasrModel(directory: trimmed))
        case .whisper: kind = .whisper(try WhisperModel(directory: trimmed))
        }
        created = Int(Date().timeIntervalSince1970)
    }

    /// True for a Whisper model that reads other languages than English.
    public var isMultilingual: Bool {
        if case .whisper(let model) = kind { return !model.config.vocabulary.englishOnly }
        return false
    }

    /// The languages a request may name in `language` (ISO 639-1 codes).
    public var languages: [String] {
        if case .whisper(let model) = kind, !model.config.vocabulary.englishOnly { return model.config.vocabulary.languages }
        return ["en"]
    }

    /// A recognizer for one worker thread, with the model's own decoding defaults.
    public func makeTranscriber(segmentSeconds: Double) -> any FileTranscriber {
        switch kind {
        case .native(let model):
            return Recognizer(model: model, options: DecodingOptions(model.config.decoding, lm: model.config.lm),
                              segmenter: Segmenter(maxSeconds: segmentSeconds))
        case .whisper(let model):
            return WhisperRecognizer(model: model, options: WhisperOptions(model.config))
        }
    }

    /// What the JSON transcript records about the decoding.
    public var decodingInfo: DecodingInfo {
        switch kind {
        case .native(let model): DecodingInfo(model: name, options: DecodingOptions(model.config.decoding, lm: model.config.lm))
        case .whisper(let model): DecodingInfo(model: name, beam: WhisperOptions(model.config).beam)
        }
    }
}

/// The models of one server, loaded once at start.
public struct ModelRegistry: Sendable {
    public let models: [ServedModel]

    /// Loads every directory; two with the same name are an error, since requests could not tell them apart.
    public init(directories: [String]) throws {
        var models: [ServedModel] = []
        for directory in directories {
            let model = try ServedModel(directory: directory)
            if let other = models.first(where: { $0.name == model.name }) {
                throw LasrError(.invalidArgument, path: directory,
                                "two models named '\(model.name)' (\(other.directory) and \(directory)): rename one directory")
            }
            models.append(model)
        }
        guard !models.isEmpty else { throw LasrError(.invalidArgument, "no model to serve: pass --model DIR") }
        self.models = models
    }

    /// OpenAI clients name `whisper-1` by default; it stands for the first model.
    public static let defaultAlias = "whisper-1"

    /// The model a request names; nil if there is none of that name.
    public func model(named name: String) -> ServedModel? {
        if name == Self.defaultAlias { return models.first }
        return models.first { $0.name == name }
    }
}
