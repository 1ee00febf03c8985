import Foundation
import LasrCore
import LasrFeatures
import LasrNN

/// A converted Whisper model directory (docs/model-format.md, "Whisper"):
/// `config.yaml` with `architecture: whisper`, `model.safetensors`, `tokens.txt`.
public final class WhisperModel: @unchecked Sendable {
    public let directory: String
    public let config: WhisperConfig
    public let tokenizer: WhisperTokenizer
    public let network: WhisperNetwork

    public init(directory: String) throws {
        self.directory = directory
        let dir = try LasrModel.existingDirectory(directory)
        config = try WhisperConfig.load(from: dir.appendingPathComponent("config.yaml").path)
        tokenizer = try WhisperTokenizer(path: dir.appendingPathComponent(config.vocabulary.tokens).path,
                                         vocabulary: config.vocabulary,
                                         mergesPath: config.vocabulary.merges.map { dir.appendingPathComponent($0).path })
        let store = WeightStore(file: try SafeTensorsFile(path: dir.appendingPathComponent("model.safetensors").path))
        network = try WhisperNetwork(store, dims: config.whisper)
    }

    /// Seconds per encoder frame: two mel hops.
    public var frameDuration: Double { 2 * config.features.frameShift }
}

/// What `config.yaml` says an architecture is; native configs have no such key.
public enum ModelArchitecture: String, Sendable {
    case lasr, whisper

    /// Reads only the `architecture` key of `directory/config.yaml`.
    public static func of(directory: String) throws -> ModelArchitecture {
        let path = URL(fileURLWithPath: directory).appendingPathComponent("config.yaml").path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            if !FileManager.default.fileExists(atPath: directory) {
                throw LasrError(.fileNotFound, path: directory, "model directory not found")
            }
            throw LasrError(.invalidModel, path: path, "no readable config.yaml in the model directory")
        }
        for line in text.split(separator: "\n") where line.hasPrefix("architecture:") {
            let value = line.dropFirst("architecture:".count).split(separator: "#").first?
                .trimmingCharacters(in: .whitespaces) ?? ""
            guard let kind = ModelArchitecture(rawValue: value) else {
                throw LasrError(.invalidModel, path: path, "architecture '\(value)' is unknown (this lasr reads whisper, or none for native)")
            }
            return kind
        }
        return .lasr
    }
}

/// A converted Whisper model's config.yaml.
public struct WhisperConfig: Sendable, Equatable {
    public var name: String
    public var features: FeatureConfig
    public var whisper: WhisperDimensions
    public var vocabulary: Vocabulary
    public var alignmentHeads: [[Int]]
    public var decoding: Decoding
    /// The lag of the alignment heads' word times behind the speech, subtracted from
    /// every word and token time; absent in a model's config means 0.
    public var timestamps: TimestampConfig

    public struct Vocabulary: Sendable, Equatable, Codable, ConfigSection {
        public var type: String
        public var size: Int
        public var tokens: String
        public var merges: String?
        public var englishOnly: Bool
        public var endOfText: Int
        public var startOfTranscript: Int
        public var translate: Int
        public var transcribe: Int
        public var startOfLM: Int
        public var startOfPrevious: Int
        public var noSpeech: Int?
        public var noTimestamps: Int
        public var timestampBegin: Int
        public var languages: [String]
        public var firstLanguage: Int?
        public var suppressTokens: [Int]?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case type, size, tokens, merges, englishOnly = "english_only", endOfText = "end_of_text"
            case startOfTranscript = "start_of_transcript", translate, transcribe, startOfLM = "start_of_lm"
            case startOfPrevious = "start_of_previous", noSpeech = "no_speech", noTimestamps = "no_timestamps"
            case timestampBegin = "timestamp_begin", languages, firstLanguage = "first_language"
            case suppressTokens = "suppress_tokens"
        }

        public static var allowedKeys: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

        public func validate(path: String, section: String) throws {
            if type != "byte-bpe" {
                throw LasrError(.invalidConfig, path: path, "\(section).type: '\(type)', expected 'byte-bpe'")
            }
            for (name, id) in [("end_of_text", endOfText), ("start_of_transcript", startOfTranscript),
                               ("no_timestamps", noTimestamps), ("timestamp_begin", timestampBegin)]
            where id < 0 || id >= size {
                throw LasrError(.invalidConfig, path: path, "\(section).\(name): id \(id) is outside the vocabulary (size \(size))")
            }
        }
    }

    public struct Decoding: Sendable, Equatable, Codable, ConfigSection {
        public var beam: Int
        public var temperatures: [Double]
        public var compressionRatioThreshold: Double?
        public var logProbThreshold: Double?
        public var noSpeechThreshold: Double?
        public var lengthPenalty: Double?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case beam, temperatures, compressionRatioThreshold = "compression_ratio_threshold"
            case logProbThreshold = "log_prob_threshold", noSpeechThreshold = "no_speech_threshold"
            case lengthPenalty = "length_penalty"
        }

        public static var allowedKeys: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

        public func validate(path: String, section: String) throws {
            if beam < 1 { throw LasrError(.invalidConfig, path: path, "\(section).beam: must be at least 1, got \(beam)") }
            if temperatures.isEmpty || temperatures.contains(where: { $0 < 0 }) {
                throw LasrError(.invalidConfig, path: path, "\(section).temperatures: need one or more values ≥ 0")
            }
        }
    }

    struct TopLevel: ConfigSection {
        var format: String
        var formatVersion: Int
        var architecture: String
        var name: String
        var alignmentHeads: [[Int]]
        enum CodingKeys: String, CodingKey {
            case format, formatVersion = "format_version", architecture, name, alignmentHeads = "alignment_heads"
        }
        static var allowedKeys: Set<String> {
            ["format", "format_version", "architecture", "name", "source", "features", "whisper", "vocabulary",
             "alignment_heads", "decoding", "timestamps"]
        }
        func validate(path: String, section: String) throws {}
    }

    public static func load(from path: String) throws -> WhisperConfig {
        let doc = try ConfigDocument(path: path)
        let top = try doc.topLevel(TopLevel.self)
        if top.format != "lasr-model" || top.architecture != "whisper" {
            throw LasrError(.invalidModel, path: path, "expected format 'lasr-model' with architecture 'whisper'")
        }
        if top.formatVersion != 1 {
            throw LasrError(.invalidModel, path: path, "format_version \(top.formatVersion) is not supported (this lasr reads 1)")
        }
        let dims = try doc.section(WhisperDimensions.self, "whisper")
        let vocabulary = try doc.section(Vocabulary.self, "vocabulary")
        if vocabulary.size != dims.nVocab {
            throw LasrError(.invalidConfig, path: path, "vocabulary.size \(vocabulary.size) differs from whisper.n_vocab \(dims.nVocab)")
        }
        for pair in top.alignmentHeads where pair.count != 2 || !(0..<dims.nTextLayer).contains(pair[0])
            || !(0..<dims.nTextHead).contains(pair[1]) {
            throw LasrError(.invalidConfig, path: path,
                            "alignment_heads: \(pair) is not a [layer, head] pair of this decoder (\(dims.nTextLayer) × \(dims.nTextHead))")
        }
        let features = try doc.section(FeatureConfig.self, "features")
        if features.nMels != dims.nMels {
            throw LasrError(.invalidConfig, path: path, "features.n_mels \(features.nMels) differs from whisper.n_mels \(dims.nMels)")
        }
        let timestamps = doc.has("timestamps") ? try doc.section(TimestampConfig.self, "timestamps") : TimestampConfig()
        if timestamps.maxTokenSpan != nil {
            // Whisper's word times come from the DTW path, which has no token spans to cap.
            throw LasrError(.invalidConfig, path: path,
                            "timestamps.max_token_span applies to native lasr models only; remove it from a Whisper config")
        }
        return WhisperConfig(name: top.name, features: features, whisper: dims, vocabulary: vocabulary,
                             alignmentHeads: top.alignmentHeads, decoding: try doc.section(Decoding.self, "decoding"),
                             timestamps: timestamps)
    }
}

/// Byte-level BPE tokens (GPT-2's scheme, which Whisper uses) to and from text: each
/// token is spelled with one printable character per byte; the bytes of a token
/// sequence, joined, are UTF-8.
public struct WhisperTokenizer: Sendable {
    /// The bytes of each token; empty for special and timestamp tokens.
    public let bytes: [[UInt8]]
    /// Each token as written in tokens.txt.
    public let spellings: [String]
    public let vocabulary: WhisperConfig.Vocabulary
    /// The token that is a single space (`Ġ`), suppressed as a first token.
    public let spaceToken: Int?
    /// The rank of each BPE merge `left right` (its line in merges.txt); empty when the
    /// model directory has none, and then text cannot be encoded.
    let mergeRanks: [String: Int]
    /// The id of each text token's spelling (empty without merges).
    let ids: [String: Int]

    /// `mergesPath`: the model's merges.txt, needed only to encode text (a prompt).
    public init(path: String, vocabulary: WhisperConfig.Vocabulary, mergesPath: String? = nil) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw LasrError(.invalidModel, path: path, "cannot read the token list")
        }
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        guard lines.count == vocabulary.size else {
            throw LasrError(.invalidModel, path: path, "\(lines.count) tokens, but the config says \(vocabulary.size)")
        }
        let decode = Self.unicodeToByte()
        spellings = lines
        bytes = lines.enumerated().map { id, token in
            if id >= vocabulary.endOfText { return [] }  // specials and timestamps carry no text
            return token.unicodeScalars.map { decode[$0.value] ?? UInt8(truncatingIfNeeded: $0.value) }
        }
        self.vocabulary = vocabulary
        spaceToken = lines.firstIndex(of: "\u{120}")
        var ids: [String: Int] = [:]
        var ranks: [String: Int] = [:]
        if let mergesPath {
            // Only encoding looks tokens up by spelling, and only with merges can it encode.
            for (id, token) in lines.enumerated() where id < vocabulary.endOfText { ids[token] = ids[token] ?? id }
            guard let text = try? String(contentsOfFile: mergesPath, encoding: .utf8) else {
                throw LasrError(.invalidModel, path: mergesPath, "cannot read the BPE merges")
            }
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where !line.isEmpty && !line.hasPrefix("#version") {
                guard line.split(separator: " ").count == 2 else {
                    throw LasrError(.invalidModel, path: mergesPath, "line \(number + 1): a merge is two tokens separated by one space")
                }
                ranks[String(line)] = ranks[String(line)] ?? ranks.count
            }
        }
        self.ids = ids
        mergeRanks = ranks
    }

    /// Whether `encode` can work: the directory has its BPE merges.
    public var canEncode: Bool { !mergeRanks.isEmpty }

    /// GPT-2's pre-tokenizer: contractions, letters, digits, other symbols (each run with
    /// its leading space), and whitespace; BPE never merges across these pieces.
    nonisolated(unsafe) static let pieces = try! NSRegularExpression(
        pattern: #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#)

    /// `text` as text tokens, as GPT-2's byte-level BPE (and so Whisper's tokenizer)
    /// spells it: each piece's UTF-8 bytes, then the lowest-ranked merge applied over
    /// and over. Throws when the model has no merges.
    public func encode(_ text: String) throws -> [Int] {
        guard canEncode else {
            throw LasrError(.invalidModel, "this Whisper model has no merges.txt, so it cannot encode text; convert it again with tools/convert_whisper.py")
        }
        let spell = Self.byteSpelling
        let ns = text as NSString
        var out: [Int] = []
        for match in Self.pieces.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
            let piece = ns.substring(with: match.range)
            var parts = piece.utf8.map { String(spell[Int($0)]) }
            while parts.count > 1 {
                var best: (rank: Int, at: Int)?
                for i in 0..<(parts.count - 1) {
                    if let rank = mergeRanks[parts[i] + " " + parts[i + 1]], rank < (best?.rank ?? .max) { best = (rank, i) }
                }
                guard let best else { break }
                // Every occurrence of the pair, left to right, as GPT-2's bpe() does.
                let left = parts[best.at], right = parts[best.at + 1]
                var merged: [String] = []
                var i = 0
                while i < parts.count {
                    if i + 1 < parts.count, parts[i] == left, parts[i + 1] == right {
                        merged.append(left + right)
                        i += 2
                    } else {
                        merged.append(parts[i])
                        i += 1
                    }
                }
                parts = merged
            }
            for part in parts {
                if let id = ids[part] {
                    out.append(id)
                } else {
                    // A vocabulary without this merge's result: fall back to its bytes.
                    for ch in part.unicodeScalars { if let id = ids[String(ch)] { out.append(id) } }
                }
            }
        }
        return out
    }

    static let byteSpelling = byteToUnicode()

    /// GPT-2's byte → character table (the inverse of `unicodeToByte`).
    static func byteToUnicode() -> [Character] {
        var table = [Character](repeating: " ", count: 256)
        for (scalar, byte) in unicodeToByte() { table[Int(byte)] = Character(Unicode.Scalar(scalar)!) }
        return table
    }

    /// GPT-2's byte → character table, inverted: printable Latin-1 bytes stand for
    /// themselves, the other 68 bytes for U+0100 onwards in byte order.
    static func unicodeToByte() -> [UInt32: UInt8] {
        var table: [UInt32: UInt8] = [:]
        var extra: UInt32 = 0
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[UInt32(b)] = UInt8(b)
            } else {
                table[256 + extra] = UInt8(b)
                extra += 1
            }
        }
        return table
    }

    public func isTimestamp(_ id: Int) -> Bool { id >= vocabulary.timestampBegin }
    public func isText(_ id: Int) -> Bool { id < vocabulary.endOfText }

    /// Text of text tokens (others are skipped); invalid UTF-8 becomes U+FFFD.
    public func decode(_ ids: [Int]) -> String {
        var all: [UInt8] = []
        for id in ids where isText(id) { all += bytes[id] }
        return String(decoding: all, as: UTF8.self)
    }
}

extension WhisperConfig {
    /// `text` (a config.yaml) with its top-level `timestamps` block replaced by one that
    /// sets `attention_lag` to `lag` seconds (written to the millisecond), or with that
    /// block appended where there is none; every other line stays as it was. `note`
    /// becomes the block's comment.
    public static func settingAttentionLag(_ lag: Double, in text: String, note: String) -> String {
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        // A top-level key starts its line; `timestamps: {…}` on one line is a block too.
        if let header = lines.firstIndex(where: { $0.hasPrefix("timestamps:") }) {
            var end = header + 1
            // The block: the indented lines (and blank ones) under its key.
            while end < lines.count, lines[end].isEmpty || lines[end].first == " " || lines[end].first == "\t" { end += 1 }
            // Blank lines that separate it from the next key stay.
            while end > header + 1, lines[end - 1].trimmingCharacters(in: .whitespaces).isEmpty { end -= 1 }
            lines.removeSubrange(header..<end)
        }
        let value = String(format: "%.3f", lag)
        lines += ["timestamps:            # docs/model-format.md \"Whisper\"",
                  "  attention_lag: \(value == "-0.000" ? "0.000" : value)   # \(note)"]
        return lines.joined(separator: "\n") + "\n"
    }
}
