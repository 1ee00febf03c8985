import Foundation
import LasrCore
import LasrFeatures
import LasrNN

/// A native lasr model loaded from its directory (docs/model-format.md):
/// `config.yaml`, `model.safetensors`, `tokens.txt`.
///
/// Loading is strict: every tensor the config implies must be present with its
/// shape, and the file may hold no others. Weights stored as float16 are widened
/// to float32 once, here.
///
/// A loaded model is immutable, so one instance serves any number of threads; the
/// mutable decoding state lives in the `SpellerDecoder.State` of each decoding run.
public final class LasrModel: @unchecked Sendable {
    public let directory: String
    public let config: ModelConfig
    public let vocabulary: Vocabulary
    /// ConvEncoder or WhisperLayersEncoder, as `encoder.type` says.
    public let encoder: any SpeechEncoder
    /// `Linear(d → V)`, present when the model has a CTC head.
    public let ctcHead: Linear?
    public let decoder: SpellerDecoder
    /// The language model of the directory's `lm:` section, fused into the beam search.
    public let languageModel: LanguageModel?

    public init(directory: String) throws {
        self.directory = directory
        let dir = try Self.existingDirectory(directory)
        config = try ModelConfig.load(from: dir.appendingPathComponent("config.yaml").path)
        vocabulary = try Vocabulary(path: dir.appendingPathComponent(config.vocabulary.tokens).path,
                                    expectedSize: config.vocabulary.size)
        let store = WeightStore(file: try SafeTensorsFile(path: dir.appendingPathComponent("model.safetensors").path))
        let d = config.encoder.dModel, v = vocabulary.count
        encoder = try makeEncoder(store, config: config.encoder, bands: config.features.nMels)
        ctcHead = config.ctc != nil ? try Linear(store, "ctc", in: d, out: v) : nil
        decoder = try SpellerDecoder(store, config: config.decoder, valueDim: d, vocabularySize: v)
        try store.finish()
        let config = self.config
        languageModel = try config.lm.map {
            try LanguageModel(directory: dir, config: $0, vocabularyFile: dir.appendingPathComponent(config.vocabulary.tokens),
                              vocabularySize: v)
        }
    }

    /// `directory` as a URL, or `fileNotFound` when it is not a directory.
    static func existingDirectory(_ directory: String) throws -> URL {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw LasrError(.fileNotFound, path: directory, "model directory not found")
        }
        return URL(fileURLWithPath: directory)
    }

    /// Seconds of audio per encoder frame (feature hop × time reduction).
    public var frameDuration: Double {
        config.features.frameShift * Double(config.encoder.timeReduction)
    }

    /// CTC log-probabilities (`T′ × V`) of an encoder output, when the model has a CTC head.
    public func ctcLogProbs(_ encoded: Matrix) -> Matrix? {
        guard let ctcHead else { return nil }
        var lp = ctcHead.apply(encoded)
        lp.data.withUnsafeMutableBufferPointer { p in
            for r in 0..<lp.rows { Activations.logSoftmax(p.baseAddress! + r * lp.cols, count: lp.cols) }
        }
        return lp
    }
}
