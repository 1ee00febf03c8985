import Foundation
import LasrDecoding

/// The transcript file formats of `lasr transcribe --output-format`.
public enum TranscriptFormat: String, CaseIterable, Sendable {
    case txt, json, srt, vtt, csv

    public var fileExtension: String { rawValue }
}

/// What produced a transcript, recorded in the JSON output.
public struct DecodingInfo: Codable, Sendable, Equatable {
    public var model: String
    public var beam: Int
    public var ctcWeight: Double
    public var lengthNormalization: Bool
    public var attentionWindow: [Int]?
    /// Shallow fusion's β and γ, when the decoding used a language model.
    public var lmWeight: Double?
    public var lengthBonus: Double?
    /// The word check's penalty δ, when the fused LM's lexicon was applied.
    public var lexiconPenalty: Double?
    /// The internal-LM discount's μ, when fusion applied one.
    public var internalLMWeight: Double?

    public init(model: String, options: DecodingOptions) {
        self.model = model
        beam = options.beam
        ctcWeight = options.ctcWeight
        // The ranking the search used: fusion has its own (DecodingOptions.ranksPerToken);
        // an lmWeight above 0 reaches here only for a model with an LM.
        lengthNormalization = options.ranksPerToken(fusing: options.lmWeight > 0)
        attentionWindow = options.attentionWindow.map { [$0.back, $0.forward] }
        if options.lmWeight > 0 {
            lmWeight = options.lmWeight
            lengthBonus = options.lengthBonus
            if options.lexiconPenalty > 0 { lexiconPenalty = options.lexiconPenalty }
            if options.internalLMWeight > 0 { internalLMWeight = options.internalLMWeight }
        }
    }

    /// A Whisper model's decoding: beam search ranked by mean log-probability, no CTC.
    public init(model: String, beam: Int) {
        self.model = model
        self.beam = beam
        ctcWeight = 0
        lengthNormalization = true
        attentionWindow = nil
    }

    enum CodingKeys: String, CodingKey {
        case model, beam, ctcWeight = "ctc_weight", lengthNormalization = "length_normalization"
        case attentionWindow = "attention_window_frames"
        case lmWeight = "lm_weight", lengthBonus = "length_bonus", lexiconPenalty = "lexicon_penalty"
        case internalLMWeight = "internal_lm_weight"
    }
}

/// Subtitle cues: runs of words that read as one caption.
public struct Cue: Sendable, Equatable {
    public var start: Double
    public var end: Double
    public var text: String
}

public enum TranscriptWriter {
    /// Renders `transcript` in `format`.
    public static func render(_ transcript: Transcript, as format: TranscriptFormat, info: DecodingInfo) throws -> String {
        switch format {
        case .txt: return transcript.text + "\n"
        case .json: return try json(transcript, info: info)
        case .srt: return srt(cues(transcript))
        case .vtt: return vtt(cues(transcript))
        case .csv:
            var out = CSV.row(["start_s", "end_s", "text"])
            for segment in transcript.segments {
                out += CSV.row([CSV.seconds(segment.start), CSV.seconds(segment.end), segment.text])
            }
            return out
        }
    }

    // MARK: JSON

    struct JSONTranscript: Codable {
        struct Segment: Codable {
            var id: Int
            var start: Double
            var end: Double
            var text: String
            var score: Double
            var words: [Word]
            var tokens: [Token]
            /// The n-best readings, when asked for (`--n-best`).
            var alternatives: [Alternative]?
        }
        struct Alternative: Codable { var text: String; var score: Double }
        struct Word: Codable { var word: String; var start: Double; var end: Double; var confidence: Double }
        struct Token: Codable {
            var id: Int; var token: String; var start: Double; var end: Double; var frame: Int; var logprob: Double
        }
        var source: String
        var duration: Double
        var text: String
        var decoding: DecodingInfo
        var segments: [Segment]
        /// What of the input could not be decoded; absent for a sound file.
        var warnings: [String]?
    }

    static func rounded(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }

    static func json(_ t: Transcript, info: DecodingInfo) throws -> String {
        let doc = JSONTranscript(
            source: t.source, duration: rounded(t.duration), text: t.text, decoding: info,
            segments: t.segments.enumerated().map { i, s in
                JSONTranscript.Segment(
                    id: i, start: rounded(s.start), end: rounded(s.end), text: s.text, score: s.score,
                    words: s.words.map { .init(word: $0.text, start: rounded($0.start), end: rounded($0.end),
                                               confidence: (($0.confidence * 1e4).rounded()) / 1e4) },
                    tokens: s.tokens.map { .init(id: $0.id, token: $0.piece, start: rounded($0.start), end: rounded($0.end),
                                                 frame: $0.frame, logprob: (($0.logProb * 1e4).rounded()) / 1e4) },
                    alternatives: s.alternatives?.map { .init(text: $0.text, score: (($0.score * 1e4).rounded()) / 1e4) })
            },
            warnings: t.warnings.isEmpty ? nil : t.warnings.map(\.reason))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(doc), as: UTF8.self) + "\n"
    }

    // MARK: Subtitles

    /// Groups words into cues: a new cue starts at a segment boundary, after a pause of
    /// more than `maxGap` seconds, or when the cue would pass `maxCharacters` or
    /// `maxDuration` seconds (the usual limits of readable captions).
    public static func cues(_ t: Transcript, maxCharacters: Int = 42, maxDuration: Double = 6, maxGap: Double = 0.8) -> [Cue] {
        var cues: [Cue] = []
        for segment in t.segments {
            var current: Cue?
            for word in segment.words {
                if var cue = current {
                    let tooLong = cue.text.count + 1 + word.text.count > maxCharacters
                    let tooSlow = word.end - cue.start > maxDuration
                    if tooLong || tooSlow || word.start - cue.end > maxGap {
                        cues.append(cue)
                        current = Cue(start: word.start, end: word.end, text: word.text)
                    } else {
                        cue.text += " " + word.text
                        cue.end = word.end
                        current = cue
                    }
                } else {
                    current = Cue(start: word.start, end: word.end, text: word.text)
                }
            }
            if let current { cues.append(current) }
        }
        // Cues never overlap and never have zero length.
        for i in cues.indices {
            if i > 0 { cues[i].start = max(cues[i].start, cues[i - 1].end) }
            cues[i].end = max(cues[i].end, cues[i].start + 0.001)
        }
        return cues
    }

    /// `HH:MM:SS<sep>mmm`.
    public static func timestamp(_ seconds: Double, separator: Character) -> String {
        let ms = Int((max(0, seconds) * 1000).rounded())
        return String(format: "%02d:%02d:%02d%@%03d", ms / 3_600_000, ms / 60000 % 60, ms / 1000 % 60,
                      String(separator), ms % 1000)
    }

    static func srt(_ cues: [Cue]) -> String {
        cues.enumerated().map { i, c in
            "\(i + 1)\n\(timestamp(c.start, separator: ",")) --> \(timestamp(c.end, separator: ","))\n\(c.text)\n"
        }.joined(separator: "\n")
    }

    static func vtt(_ cues: [Cue]) -> String {
        "WEBVTT\n\n" + cues.map { c in
            "\(timestamp(c.start, separator: ".")) --> \(timestamp(c.end, separator: "."))\n\(c.text)\n"
        }.joined(separator: "\n")
    }
}
