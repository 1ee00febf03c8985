import Foundation
import LasrDecoding
import LasrOutput

/// The fields of `POST /v1/audio/alignments`.
public struct AlignmentParameters: Sendable {
    /// What to send back: the three CSVs of `lasr align`, one segment's heatmap, or all of it as JSON.
    public enum Format: String, CaseIterable, Sendable {
        case json
        case attentionCSV = "attention_csv"
        case tokensCSV = "tokens_csv"
        case wordsCSV = "words_csv"
        case svg
    }

    public var model: ServedModel
    public var file: MultipartForm.Part
    public var format: Format
    /// The segment whose heatmap `svg` returns.
    public var segment: Int

    public init(form: MultipartForm, models: ModelRegistry) throws(APIError) {
        file = try TranscriptionParameters.file(in: form)
        model = try TranscriptionParameters.model(form.text("model"), in: models)
        let name = form.text("response_format")?.trimmingCharacters(in: .whitespaces) ?? ""
        if name.isEmpty {
            format = .json
        } else if let value = Format(rawValue: name) {
            format = value
        } else {
            throw .badField("response_format", "response_format must be one of \(Format.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(name)')")
        }
        let index = form.text("segment")?.trimmingCharacters(in: .whitespaces) ?? ""
        if index.isEmpty {
            segment = 0
        } else if let value = Int(index), value >= 0 {
            segment = value
        } else {
            throw .badField("segment", "segment must be a segment index, 0 or more (got '\(index)')")
        }
    }
}

/// Alignment bodies, all made by `AlignmentWriter` and `AttentionSVG` as `lasr align` writes them.
public enum AlignmentResponse {
    struct Document: Encodable {
        struct Segment: Encodable {
            var id: Int
            var start: Double
            var end: Double
            var text: String
            var svg: String
        }
        var text: String
        var duration: Double
        var segments: [Segment]
        var words: [OpenAIResponse.Verbose.Word]
        var attention_csv: String
        var tokens_csv: String
        var words_csv: String
        var warnings: [String]?
    }

    public static func render(_ t: Transcript, parameters: AlignmentParameters) throws -> (body: String, contentType: String) {
        let name = ((parameters.file.filename ?? "upload") as NSString).deletingPathExtension
        func title(_ s: Int) -> String { "\(name) — segment \(s)" }
        switch parameters.format {
        case .attentionCSV: return (AlignmentWriter.attentionCSV(t), "text/csv; charset=utf-8")
        case .tokensCSV: return (AlignmentWriter.tokensCSV(t), "text/csv; charset=utf-8")
        case .wordsCSV: return (AlignmentWriter.wordsCSV(t), "text/csv; charset=utf-8")
        case .svg:
            guard t.segments.indices.contains(parameters.segment) else {
                throw APIError.badField("segment", "the upload decoded into \(t.segments.count) segment(s); segment \(parameters.segment) does not exist")
            }
            return (AttentionSVG.render(t.segments[parameters.segment], title: title(parameters.segment)), "image/svg+xml")
        case .json:
            let verbose = OpenAIResponse.verbose(t, granularities: [.word], language: "en")
            let doc = Document(
                text: t.text, duration: verbose.duration,
                segments: t.segments.enumerated().map { i, s in
                    Document.Segment(id: i, start: (s.start * 1000).rounded() / 1000, end: (s.end * 1000).rounded() / 1000,
                                     text: s.text, svg: AttentionSVG.render(s, title: title(i)))
                },
                words: verbose.words ?? [], attention_csv: AlignmentWriter.attentionCSV(t),
                tokens_csv: AlignmentWriter.tokensCSV(t), words_csv: AlignmentWriter.wordsCSV(t),
                warnings: OpenAIResponse.warnings(t))
            return (try OpenAIResponse.encode(doc), "application/json")
        }
    }
}
