import Foundation
import LasrDecoding
import LasrOutput

/// The fields of `POST /v1/audio/transcriptions`, checked: every bad value is an
/// `APIError` naming its field.
public struct TranscriptionParameters: Sendable {
    /// OpenAI's `response_format` values.
    public enum ResponseFormat: String, CaseIterable, Sendable {
        case json, text, srt, vtt
        case verboseJSON = "verbose_json"
    }

    /// OpenAI's `timestamp_granularities[]` values.
    public enum Granularity: String, CaseIterable, Sendable {
        case word, segment
    }

    public var model: ServedModel
    public var file: MultipartForm.Part
    public var language: String?
    /// Text before the audio, for a Whisper model to follow (spellings, names, style),
    /// as openai-whisper's `initial_prompt`. Native models take no text context: they
    /// accept the field and decode as without it (docs/server.md).
    public var prompt: String?
    /// `prompt` in the Whisper model's tokens (empty for a native model or no prompt).
    public var promptTokens: [Int] = []
    /// 0 (the default) keeps Whisper's fallback over rising temperatures; higher starts there. Native models decode by beam search and ignore it.
    public var temperature: Double
    public var responseFormat: ResponseFormat
    public var granularities: Set<Granularity>

    /// Reads the form of one request against the served models.
    public init(form: MultipartForm, models: ModelRegistry, maxUploadBytes: Int) throws(APIError) {
        let file = try Self.file(in: form)
        guard file.body.readableBytes <= maxUploadBytes else {
            throw APIError(.contentTooLarge, "the uploaded file is \(file.body.readableBytes) bytes; this server accepts at most \(maxUploadBytes) (--max-upload-mb)",
                           param: "file", code: "file_too_large")
        }
        self.file = file
        model = try Self.model(form.text("model"), in: models)

        let language = form.text("language")?.trimmingCharacters(in: .whitespaces).lowercased()
        if let language, !language.isEmpty {
            guard model.languages.contains(language) else {
                throw .badField("language", model.languages == ["en"]
                    ? "model '\(model.name)' transcribes English only; language '\(language)' is not available (leave it out or send 'en')"
                    : "model '\(model.name)' has no language '\(language)' (ISO 639-1 codes such as en, de, fr)")
            }
            self.language = language
        }
        prompt = form.text("prompt")
        if let text = prompt?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty,
           case .whisper(let whisper) = model.kind {
            do {
                // openai-whisper encodes " " + the stripped prompt: words start with a space.
                promptTokens = try whisper.tokenizer.encode(" " + text)
            } catch {
                throw .badField("prompt", "model '\(model.name)' cannot take a prompt: its directory has no merges.txt to encode text with")
            }
        }

        if let text = form.text("temperature"), !text.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let value = Double(text.trimmingCharacters(in: .whitespaces)), (0...1).contains(value) else {
                throw .badField("temperature", "temperature must be a number from 0 to 1 (got '\(text)')")
            }
            temperature = value
        } else {
            temperature = 0
        }

        let format = form.text("response_format")?.trimmingCharacters(in: .whitespaces) ?? ""
        if format.isEmpty {
            responseFormat = .json
        } else if let value = ResponseFormat(rawValue: format) {
            responseFormat = value
        } else {
            throw .badField("response_format", "response_format must be one of \(ResponseFormat.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(format)')")
        }

        var granularities: Set<Granularity> = []
        for value in form.values("timestamp_granularities[]") + form.values("timestamp_granularities") {
            guard let g = Granularity(rawValue: value.trimmingCharacters(in: .whitespaces)) else {
                throw .badField("timestamp_granularities[]", "timestamp_granularities[] takes word and segment (got '\(value)')")
            }
            granularities.insert(g)
        }
        // OpenAI's default: segments only.
        self.granularities = granularities.isEmpty ? [.segment] : granularities

        if let stream = form.text("stream"), stream.lowercased() == "true" {
            throw .badField("stream", "stream=true is not supported here: stream live audio over the WebSocket at /v1/audio/stream")
        }
    }

    /// The `file` part, which must hold something.
    static func file(in form: MultipartForm) throws(APIError) -> MultipartForm.Part {
        guard let file = form.part("file") else {
            throw .badField("file", "the form has no 'file' field: upload the audio as a file part named 'file'")
        }
        guard file.body.readableBytes > 0 else {
            throw .badField("file", "the uploaded file '\(file.filename ?? "file")' is empty")
        }
        return file
    }

    /// The model a request names: required, as in the OpenAI API; `whisper-1` is the first served model.
    static func model(_ name: String?, in models: ModelRegistry) throws(APIError) -> ServedModel {
        guard let name = name?.trimmingCharacters(in: .whitespaces), !name.isEmpty else {
            throw .badField("model", "the form has no 'model' field; GET /v1/models lists the models (\(models.models.map(\.name).joined(separator: ", ")))")
        }
        guard let model = models.model(named: name) else {
            throw APIError(.notFound, "no model '\(name)' on this server; it serves \(models.models.map(\.name).joined(separator: ", "))",
                           param: "model", code: "model_not_found")
        }
        return model
    }
}

/// The response bodies of the OpenAI API reference, made from a lasr transcript.
public enum OpenAIResponse {
    /// The body of a transcription in `format`, and its Content-Type.
    public static func transcription(_ t: Transcript, as format: TranscriptionParameters.ResponseFormat,
                                     granularities: Set<TranscriptionParameters.Granularity>,
                                     language: String, model: ServedModel) throws -> (body: String, contentType: String) {
        switch format {
        case .text:
            return (try TranscriptWriter.render(t, as: .txt, info: model.decodingInfo), "text/plain; charset=utf-8")
        case .srt:
            return (try TranscriptWriter.render(t, as: .srt, info: model.decodingInfo), "application/x-subrip; charset=utf-8")
        case .vtt:
            return (try TranscriptWriter.render(t, as: .vtt, info: model.decodingInfo), "text/vtt; charset=utf-8")
        case .json:
            return (try encode(Simple(text: t.text, usage: .init(seconds: t.duration), warnings: warnings(t))), "application/json")
        case .verboseJSON:
            return (try encode(verbose(t, granularities: granularities, language: language)), "application/json")
        }
    }

    struct Usage: Encodable {
        var type = "duration"
        var seconds: Int
        init(seconds: Double) { self.seconds = Int(seconds.rounded(.up)) }
    }

    struct Simple: Encodable {
        var text: String
        var usage: Usage
        /// lasr's addition: what of a damaged upload could not be decoded.
        var warnings: [String]?
    }

    struct Verbose: Encodable {
        struct Segment: Encodable {
            var id: Int
            var seek: Int
            var start: Double
            var end: Double
            var text: String
            var tokens: [Int]
            var temperature: Double
            var avg_logprob: Double
            var compression_ratio: Double
            var no_speech_prob: Double
        }
        struct Word: Encodable {
            var word: String
            var start: Double
            var end: Double
            /// lasr's addition: the geometric mean of the word's token probabilities.
            var confidence: Double
        }
        var task = "transcribe"
        var language: String
        var duration: Double
        var text: String
        var segments: [Segment]?
        var words: [Word]?
        var usage: Usage
        var warnings: [String]?
    }

    static func verbose(_ t: Transcript, granularities: Set<TranscriptionParameters.Granularity>, language: String) -> Verbose {
        func r(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
        let segments = t.segments.enumerated().map { i, s in
            let logProbs = s.tokens.map(\.logProb)
            return Verbose.Segment(
                id: i, seek: Int((s.start * 100).rounded()), start: r(s.start), end: r(s.end), text: s.text,
                tokens: s.tokens.map(\.id), temperature: s.temperature ?? 0,
                avg_logprob: logProbs.isEmpty ? s.score : (logProbs.reduce(0, +) / Double(logProbs.count) * 1e4).rounded() / 1e4,
                compression_ratio: (WhisperRecognizer.compressionRatio(s.text) * 1e4).rounded() / 1e4,
                no_speech_prob: ((s.noSpeechProbability ?? 0) * 1e6).rounded() / 1e6)
        }
        let words = t.words.map {
            Verbose.Word(word: $0.text, start: r($0.start), end: r($0.end), confidence: ($0.confidence * 1e4).rounded() / 1e4)
        }
        return Verbose(language: languageName(language), duration: r(t.duration), text: t.text,
                       segments: granularities.contains(.segment) ? segments : nil,
                       words: granularities.contains(.word) ? words : nil,
                       usage: .init(seconds: t.duration), warnings: warnings(t))
    }

    static func warnings(_ t: Transcript) -> [String]? { t.warnings.isEmpty ? nil : t.warnings.map(\.reason) }

    /// OpenAI reports the language by its English name.
    static func languageName(_ code: String) -> String {
        Locale(identifier: "en").localizedString(forLanguageCode: code)?.lowercased() ?? code
    }

    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }
}
