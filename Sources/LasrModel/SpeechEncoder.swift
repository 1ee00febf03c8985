import LasrCore
import LasrNN

/// What the CTC head and the speller read: raw log-mel features (`T × bands`) in,
/// `T′ × d_model` frames out, one every `timeReduction` feature frames.
/// The `encoder.type` of a model's config picks the implementation.
public protocol SpeechEncoder: AnyObject {
    var config: EncoderConfig { get }
    /// Mel bands of the features it reads.
    var inputBands: Int { get }
    /// Encoder frames for `frames` feature frames.
    func outputFrames(_ frames: Int) -> Int
    /// Encodes raw log-mel features (`T × bands`) into `T′ × d`.
    func callAsFunction(_ features: Matrix) -> Matrix
}

/// The encoder that `config.type` names, with its weights taken from `store`.
func makeEncoder(_ store: WeightStore, config: EncoderConfig, bands: Int) throws -> any SpeechEncoder {
    switch config.type {
    case .conv: return try ConvEncoder(store, config: config, bands: bands)
    case .whisper: return try WhisperLayersEncoder(store, config: config, bands: bands)
    }
}
