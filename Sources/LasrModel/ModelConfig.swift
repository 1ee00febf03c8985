import Foundation
import LasrCore
import LasrFeatures

/// A native model's `config.yaml`: what the engine needs to rebuild the network
/// the recipe trained. `docs/model-format.md` documents every field.
public struct ModelConfig: Sendable, Equatable {
    public var name: String
    public var features: FeatureConfig
    public var vocabulary: VocabularyConfig
    public var encoder: EncoderConfig
    public var ctc: CTCConfig?
    public var decoder: DecoderConfig
    public var decoding: DecodingConfig
    /// How word times are read off the attention; absent in a model's config means no correction.
    public var timestamps: TimestampConfig
    /// The language model fused into the beam search, when the directory has one.
    public var lm: LMConfig?

    /// Reads and checks `path` (a YAML file with the sections above).
    public static func load(from path: String) throws -> ModelConfig {
        let doc = try ConfigDocument(path: path)
        let top = try doc.topLevel(TopLevel.self)
        if top.format != "lasr-model" {
            throw LasrError(.invalidModel, path: path, "format is '\(top.format)', expected 'lasr-model'")
        }
        if top.formatVersion != 1 {
            throw LasrError(.invalidModel, path: path, "format_version \(top.formatVersion) is not supported (this lasr reads 1)")
        }
        return ModelConfig(
            name: top.name,
            features: try doc.section(FeatureConfig.self, "features"),
            vocabulary: try doc.section(VocabularyConfig.self, "vocabulary"),
            encoder: try doc.section(EncoderConfig.self, "encoder"),
            ctc: doc.has("ctc") ? try doc.section(CTCConfig.self, "ctc") : nil,
            decoder: try doc.section(DecoderConfig.self, "decoder"),
            decoding: try doc.section(DecodingConfig.self, "decoding"),
            timestamps: doc.has("timestamps") ? try doc.section(TimestampConfig.self, "timestamps") : TimestampConfig(),
            lm: doc.has("lm") ? try doc.section(LMConfig.self, "lm") : nil)
    }

    /// The top-level keys: a format stamp, a name, and the sections.
    struct TopLevel: ConfigSection {
        var format: String
        var formatVersion: Int
        var name: String
        enum CodingKeys: String, CodingKey {
            case format, formatVersion = "format_version", name
        }
        static var allowedKeys: Set<String> {
            ["format", "format_version", "name", "features", "vocabulary", "encoder", "ctc", "decoder", "decoding", "timestamps", "lm"]
        }
        func validate(path: String, section: String) throws {}
    }
}

/// Bounds on a config's sizes, far above any model lasr can hold (Whisper large is 1280
/// wide with 32 layers and 51 865 tokens) and low enough that what the loader builds from
/// them cannot overflow or ask for absurd memory before the weights file says otherwise.
enum ConfigLimits {
    static let dimension = 1 << 24
    static let layers = 1 << 10

    /// Throws `invalidConfig` naming the first of `fields` outside `range`.
    static func check(_ fields: KeyValuePairs<String, Int>, in range: ClosedRange<Int>, path: String, section: String) throws {
        for (key, value) in fields where !range.contains(value) {
            throw LasrError(.invalidConfig, path: path,
                            "\(section).\(key) must lie in \(range.lowerBound)…\(range.upperBound), got \(value)")
        }
    }
}

public struct VocabularyConfig: Sendable, Equatable, Codable, ConfigSection {
    public enum Kind: String, Sendable, Codable { case sentencepiece, characters }
    public var type: Kind
    /// Entries including the three specials.
    public var size: Int
    /// The text normalization the model was trained on (see training/README.md).
    public var normalization: String
    /// File name of the piece list, relative to the model directory.
    public var tokens: String

    public static var allowedKeys: Set<String> { ["type", "size", "normalization", "tokens"] }
    public func validate(path: String, section: String) throws {
        if size < 4 { throw LasrError(.invalidConfig, path: path, "\(section).size: \(size) is too small") }
        try ConfigLimits.check(["size": size], in: 4...ConfigLimits.dimension, path: path, section: section)
    }
}

/// The `encoder:` section. `type: conv` (the default) is the convolutional encoder of
/// ConvEncoder.swift; `type: whisper` is WhisperLayersEncoder.swift, a Whisper encoder's
/// first layers at 40 ms with an optional stack of the same conv blocks after them.
public struct EncoderConfig: Sendable, Equatable, Codable, ConfigSection {
    public enum Kind: String, Sendable, Codable, CaseIterable { case conv, whisper }

    /// The `whisper:` block of a `type: whisper` encoder: the transformer's width, heads,
    /// layers, MLP width and positions (40 ms frames), and the conv blocks after it.
    public struct WhisperLayers: Sendable, Equatable, Codable {
        public var state: Int
        public var heads: Int
        public var layers: Int
        public var ff: Int
        public var ctx: Int
        public var convBlocks: Int

        enum CodingKeys: String, CodingKey, CaseIterable {
            case state, heads, layers, ff, ctx, convBlocks = "conv_blocks"
        }

        public init(state: Int, heads: Int, layers: Int, ff: Int, ctx: Int, convBlocks: Int = 0) {
            (self.state, self.heads, self.layers, self.ff, self.ctx, self.convBlocks) = (state, heads, layers, ff, ctx, convBlocks)
        }

        public init(from decoder: Decoder) throws {
            // The section check sees only the encoder's own keys: a misspelt key in here
            // must not pass silently as a default.
            let any = try decoder.container(keyedBy: AnyKey.self)
            let allowed = Set(CodingKeys.allCases.map(\.rawValue))
            if let unknown = any.allKeys.map(\.stringValue).sorted().first(where: { !allowed.contains($0) }) {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [AnyKey(stringValue: unknown)],
                    debugDescription: "unknown key '\(unknown)' (known: \(allowed.sorted().joined(separator: ", ")))"))
            }
            let c = try decoder.container(keyedBy: CodingKeys.self)
            state = try c.decode(Int.self, forKey: .state)
            heads = try c.decode(Int.self, forKey: .heads)
            layers = try c.decode(Int.self, forKey: .layers)
            ff = try c.decode(Int.self, forKey: .ff)
            ctx = try c.decode(Int.self, forKey: .ctx)
            convBlocks = try c.decodeIfPresent(Int.self, forKey: .convBlocks) ?? 0
        }

        struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
    }

    public var type: Kind
    /// Channels of the two stride-2 2-D convolutions (`type: conv` only).
    public var subsamplingChannels: Int?
    public var dModel: Int
    /// Conv blocks of a `type: conv` encoder (a `type: whisper` one counts its own in `whisper`).
    public var numBlocks: Int?
    public var kernelSize: Int
    public var ffMult: Int
    public var layerNormEps: Double
    public var whisper: WhisperLayers?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case type, subsamplingChannels = "subsampling_channels", dModel = "d_model", numBlocks = "num_blocks"
        case kernelSize = "kernel_size", ffMult = "ff_mult", layerNormEps = "layer_norm_eps", whisper
    }
    public static var allowedKeys: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

    public init(type: Kind = .conv, subsamplingChannels: Int? = nil, dModel: Int, numBlocks: Int? = nil, kernelSize: Int,
                ffMult: Int, layerNormEps: Double = 1e-5, whisper: WhisperLayers? = nil) {
        (self.type, self.subsamplingChannels, self.dModel, self.numBlocks) = (type, subsamplingChannels, dModel, numBlocks)
        (self.kernelSize, self.ffMult, self.layerNormEps, self.whisper) = (kernelSize, ffMult, layerNormEps, whisper)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decodeIfPresent(Kind.self, forKey: .type) ?? .conv
        subsamplingChannels = try c.decodeIfPresent(Int.self, forKey: .subsamplingChannels)
        dModel = try c.decode(Int.self, forKey: .dModel)
        numBlocks = try c.decodeIfPresent(Int.self, forKey: .numBlocks)
        kernelSize = try c.decode(Int.self, forKey: .kernelSize)
        ffMult = try c.decode(Int.self, forKey: .ffMult)
        // PyTorch's LayerNorm default, which the recipe's whisper encoder uses throughout.
        layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? 1e-5
        whisper = try c.decodeIfPresent(WhisperLayers.self, forKey: .whisper)
    }

    public func validate(path: String, section: String) throws {
        func fail(_ why: String) -> LasrError { LasrError(.invalidConfig, path: path, "\(section).\(why)") }
        if kernelSize % 2 == 0 { throw fail("kernel_size must be odd, got \(kernelSize)") }
        for (key, value) in [("d_model", dModel), ("ff_mult", ffMult)] where value <= 0 {
            throw fail("\(key) must be positive, got \(value)")
        }
        if !(layerNormEps > 0 && layerNormEps < 1) { throw fail("layer_norm_eps must be in (0, 1), got \(layerNormEps)") }
        try ConfigLimits.check(["d_model": dModel, "ff_mult": ffMult, "kernel_size": kernelSize],
                               in: 1...ConfigLimits.dimension, path: path, section: section)
        switch type {
        case .conv:
            guard let subsamplingChannels else { throw fail("subsampling_channels is missing (type: conv)") }
            guard let numBlocks else { throw fail("num_blocks is missing (type: conv)") }
            if whisper != nil { throw fail("whisper: belongs to type: whisper, not conv") }
            if subsamplingChannels <= 0 { throw fail("subsampling_channels must be positive, got \(subsamplingChannels)") }
            try ConfigLimits.check(["subsampling_channels": subsamplingChannels], in: 1...ConfigLimits.dimension,
                                   path: path, section: section)
            try ConfigLimits.check(["num_blocks": numBlocks], in: 0...ConfigLimits.layers, path: path, section: section)
        case .whisper:
            guard let w = whisper else { throw fail("whisper: is missing (type: whisper needs state, heads, layers, ff, ctx)") }
            if subsamplingChannels != nil || numBlocks != nil {
                throw fail("subsampling_channels and num_blocks belong to type: conv (whisper.conv_blocks counts these blocks)")
            }
            let inner = section + ".whisper"
            try ConfigLimits.check(["state": w.state, "heads": w.heads, "ff": w.ff, "ctx": w.ctx],
                                   in: 1...ConfigLimits.dimension, path: path, section: inner)
            try ConfigLimits.check(["layers": w.layers], in: 1...ConfigLimits.layers, path: path, section: inner)
            try ConfigLimits.check(["conv_blocks": w.convBlocks], in: 0...ConfigLimits.layers, path: path, section: inner)
            if w.state % w.heads != 0 { throw fail("whisper.state \(w.state) is not a multiple of whisper.heads \(w.heads)") }
        }
    }

    /// Feature frames per encoder frame: two stride-2 convolutions, or Whisper's one and
    /// the average of frame pairs.
    public var timeReduction: Int { 4 }
}

public struct CTCConfig: Sendable, Equatable, Codable, ConfigSection {
    public var blankId: Int
    enum CodingKeys: String, CodingKey { case blankId = "blank_id" }
    public static var allowedKeys: Set<String> { ["blank_id"] }
    public func validate(path: String, section: String) throws {}
}

public struct DecoderConfig: Sendable, Equatable, Codable, ConfigSection {
    public struct Attention: Sendable, Equatable, Codable {
        public enum Kind: String, Sendable, Codable { case location, dot }
        public var type: Kind
        public var dim: Int
        public var filters: Int?
        public var radius: Int?
    }

    public var embedDim: Int
    public var hidden: Int
    public var sosEosId: Int
    public var attention: Attention

    enum CodingKeys: String, CodingKey, CaseIterable {
        case embedDim = "embed_dim", hidden, sosEosId = "sos_eos_id", attention
    }
    public static var allowedKeys: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }
    public func validate(path: String, section: String) throws {
        if attention.type == .location && (attention.filters == nil || attention.radius == nil) {
            throw LasrError(.invalidConfig, path: path, "\(section).attention: 'location' needs 'filters' and 'radius'")
        }
        let dimension = 1...ConfigLimits.dimension
        try ConfigLimits.check(["embed_dim": embedDim, "hidden": hidden], in: dimension, path: path, section: section)
        try ConfigLimits.check(["dim": attention.dim], in: dimension, path: path, section: section + ".attention")
        if let filters = attention.filters {
            try ConfigLimits.check(["filters": filters], in: dimension, path: path, section: section + ".attention")
        }
        if let radius = attention.radius {
            try ConfigLimits.check(["radius": radius], in: 0...ConfigLimits.dimension, path: path, section: section + ".attention")
        }
    }
}

/// Beam search defaults; every field can be overridden per call.
public struct DecodingConfig: Sendable, Equatable, Codable, ConfigSection {
    public var beam: Int
    public var ctcWeight: Double
    public var lengthNormalization: Bool
    public var maxLenRatio: Double
    public var eosThreshold: Double

    enum CodingKeys: String, CodingKey, CaseIterable {
        case beam, ctcWeight = "ctc_weight", lengthNormalization = "length_normalization"
        case maxLenRatio = "max_len_ratio", eosThreshold = "eos_threshold"
    }
    public static var allowedKeys: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }
    public func validate(path: String, section: String) throws {
        if beam < 1 { throw LasrError(.invalidConfig, path: path, "\(section).beam must be ≥ 1, got \(beam)") }
        if !(0...1).contains(ctcWeight) {
            throw LasrError(.invalidConfig, path: path, "\(section).ctc_weight must lie in [0, 1], got \(ctcWeight)")
        }
    }
}

/// Timestamp calibration. A listen-attend-spell decoder attends to a token's acoustic
/// evidence a little after the token ends; `attentionLag` (seconds) is that delay as the
/// recipe measured it on synthetic speech with known word boundaries
/// (`training/lasr_train/timing.py`), and the engine subtracts it from every token time.
/// A converted Whisper model's config has the same section: there it is the constant
/// offset of the alignment heads' word times (`lasr models calibrate`), negative where
/// a checkpoint's times come early.
public struct TimestampConfig: Sendable, Equatable, Codable, ConfigSection {
    public var attentionLag: Double
    /// Native models: the longest a token reaches back before its attention peak
    /// (seconds), `timestamps.max_token_span`. A token starts at the previous token's
    /// peak, but where that peak lies further back (a pause, a long word onset) the
    /// start is held this close to its own peak. Measured by the recipe on the same
    /// synthetic speech as the lag; nil (absent) is the 0.3 s the engine used before it
    /// was calibrated. Whisper models, timed by DTW, refuse the key.
    public var maxTokenSpan: Double?

    /// The span of a model whose config does not say (the rule before calibration).
    public static let defaultMaxTokenSpan = 0.3

    public init(attentionLag: Double = 0, maxTokenSpan: Double? = nil) {
        self.attentionLag = attentionLag
        self.maxTokenSpan = maxTokenSpan
    }

    /// Either key may be left out: no lag, or the default span.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        attentionLag = try c.decodeIfPresent(Double.self, forKey: .attentionLag) ?? 0
        maxTokenSpan = try c.decodeIfPresent(Double.self, forKey: .maxTokenSpan)
    }

    /// `maxTokenSpan`, or the default where the config has none.
    public var tokenSpan: Double { maxTokenSpan ?? Self.defaultMaxTokenSpan }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case attentionLag = "attention_lag"
        case maxTokenSpan = "max_token_span"
    }
    public static var allowedKeys: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }
    public func validate(path: String, section: String) throws {
        if !(-1...1).contains(attentionLag) {
            throw LasrError(.invalidConfig, path: path,
                            "\(section).attention_lag must lie in [-1, 1] seconds, got \(attentionLag)")
        }
        if let maxTokenSpan, !(maxTokenSpan > 0 && maxTokenSpan <= 2) {
            throw LasrError(.invalidConfig, path: path,
                            "\(section).max_token_span must lie in (0, 2] seconds, got \(maxTokenSpan)")
        }
    }
}

/// The `lm:` section: a token-level LSTM language model over the model's vocabulary
/// (`LanguageModel`), trained by `make train-lm`, and its shallow-fusion defaults.
public struct LMConfig: Sendable, Equatable, Codable, ConfigSection {
    /// The weights file, relative to the model directory.
    public var file: String
    public var embedDim: Int
    public var hidden: Int
    public var layers: Int
    /// CRC-32 of the `tokens.txt` the LM was trained on: an LM read over another
    /// vocabulary would score the wrong pieces, so the model refuses to load.
    public var vocabularyCRC32: UInt32
    /// Default fusion weight β: each candidate token gains `β · log p_lm`.
    public var weight: Double
    /// Default bonus γ per token, which offsets the LM's preference for short hypotheses.
    public var lengthBonus: Double
    /// Per-token perplexity on the recipe's held-out text, for the record.
    public var heldoutPerplexity: Double?
    /// How ended hypotheses are ranked while the LM is fused: by score per token (true) or by
    /// total score (false, the default when the key is absent, as ESPnet ranks). Per-token
    /// ranking adds about γ to every hypothesis alike, so γ could not counter the LM's pull
    /// toward ending; by total score it counts once per token. The search without an LM
    /// keeps `decoding.length_normalization`.
    public var lengthNormalization: Bool?
    /// A word list (`Lexicon`), relative to the model directory: while the LM is fused, a
    /// hypothesis pays `lexicon_penalty` where its spelling leaves every word of it.
    public var lexicon: String?
    /// Default penalty δ ≥ 0 for a word outside `lexicon` (0 when absent: no word check).
    public var lexiconPenalty: Double?
    /// Default weight μ ≥ 0 of the internal-LM discount (`DecodingOptions.internalLMWeight`;
    /// 0 when absent).
    public var internalLMWeight: Double?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case file, embedDim = "embed_dim", hidden, layers, vocabularyCRC32 = "vocabulary_crc32", weight
        case lengthBonus = "length_bonus", heldoutPerplexity = "heldout_perplexity"
        case lengthNormalization = "length_normalization"
        case lexicon, lexiconPenalty = "lexicon_penalty"
        case internalLMWeight = "internal_lm_weight"
    }
    public static var allowedKeys: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }
    public func validate(path: String, section: String) throws {
        if embedDim < 1 || hidden < 1 || !(1...4).contains(layers) {
            throw LasrError(.invalidConfig, path: path,
                            "\(section): embed_dim and hidden must be ≥ 1 and layers 1…4, got \(embedDim), \(hidden), \(layers)")
        }
        if !(0...5).contains(weight) {
            throw LasrError(.invalidConfig, path: path, "\(section).weight must lie in [0, 5], got \(weight)")
        }
        if !(-5...5).contains(lengthBonus) {
            throw LasrError(.invalidConfig, path: path, "\(section).length_bonus must lie in [-5, 5], got \(lengthBonus)")
        }
        if let lexiconPenalty, !(0...20).contains(lexiconPenalty) {
            throw LasrError(.invalidConfig, path: path, "\(section).lexicon_penalty must lie in [0, 20], got \(lexiconPenalty)")
        }
        if let internalLMWeight, !(0...2).contains(internalLMWeight) {
            throw LasrError(.invalidConfig, path: path, "\(section).internal_lm_weight must lie in [0, 2], got \(internalLMWeight)")
        }
        if lexiconPenalty != nil, lexicon == nil {
            throw LasrError(.invalidConfig, path: path, "\(section).lexicon_penalty needs \(section).lexicon, the word list it checks against")
        }
    }
}
