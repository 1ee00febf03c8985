import LasrCore

/// Parameters of the log-mel computation: the `features:` section of a model
/// config. `docs/features.md` defines what each one means; the defaults are those
/// of `configs/default.yaml`.
public struct FeatureConfig: Sendable, Equatable, Codable, ConfigSection {
    public var sampleRate: Int = 16000
    public var nFFT: Int = 512
    public var winLength: Int = 400
    public var hopLength: Int = 160
    public var nMels: Int = 80
    public var fMin: Double = 20
    public var fMax: Double = 7600
    public var logFloor: Double = 1e-6
    /// Frequency scale of the filter edges. Optional in a config; `htk` when absent.
    public var melScale: MelScale = .htk
    /// Area normalization of each filter. Optional; `none` when absent.
    public var melNorm: MelNorm = .none
    /// Frames centered on multiples of the hop (reflect padding) rather than whole
    /// windows from the first sample. Optional; `false` when absent.
    public var center: Bool = false
    /// Base of the logarithm. Optional; `e` when absent.
    public var logBase: LogBase = .e
    /// When set, values below (maximum of the call − this) are raised to it.
    /// Optional; absent means no such clamp.
    public var dynamicRange: Double? = nil
    /// The output is `(log + offset) · scale`. Optional; 0 and 1 when absent.
    public var offset: Double = 0
    public var scale: Double = 1

    /// The two mel scales in use: HTK's (`2595·log10(1 + f/700)`) and Slaney's
    /// (linear below 1 kHz, logarithmic above, as librosa's default).
    public enum MelScale: String, Sendable, Codable, CaseIterable { case htk, slaney }
    /// `slaney` scales each triangle by `2 / (right edge − left edge)` so every filter has unit area.
    public enum MelNorm: String, Sendable, Codable, CaseIterable { case none, slaney }
    public enum LogBase: String, Sendable, Codable, CaseIterable { case e, ten = "10" }

    public init() {}

    /// Whisper's log-mel front end (OpenAI's `whisper/audio.py`): 25 ms periodic
    /// Hann windows centered every 10 ms with reflect padding, Slaney-scale filters
    /// with Slaney normalization from 0 to 8 kHz, log10 floored at 1e-10, clamped to
    /// 8 below the maximum, then `(x + 4) / 4`.
    public static func whisper(nMels: Int) -> FeatureConfig {
        var c = FeatureConfig()
        c.nFFT = 400
        c.winLength = 400
        c.hopLength = 160
        c.nMels = nMels
        c.fMin = 0
        c.fMax = 8000
        c.logFloor = 1e-10
        c.melScale = .slaney
        c.melNorm = .slaney
        c.center = true
        c.logBase = .ten
        c.dynamicRange = 8
        c.offset = 4
        c.scale = 0.25
        return c
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case sampleRate = "sample_rate"
        case nFFT = "n_fft"
        case winLength = "win_length"
        case hopLength = "hop_length"
        case nMels = "n_mels"
        case fMin = "f_min"
        case fMax = "f_max"
        case logFloor = "log_floor"
        case melScale = "mel_scale"
        case melNorm = "mel_norm"
        case center
        case logBase = "log_base"
        case dynamicRange = "dynamic_range"
        case offset
        case scale
    }

    public static var allowedKeys: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

    /// The eight keys of the native definition are required: a model's features must
    /// be stated, not guessed. The keys that describe other front ends (Whisper's)
    /// default to the native definition when absent.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sampleRate = try c.decode(Int.self, forKey: .sampleRate)
        nFFT = try c.decode(Int.self, forKey: .nFFT)
        winLength = try c.decode(Int.self, forKey: .winLength)
        hopLength = try c.decode(Int.self, forKey: .hopLength)
        nMels = try c.decode(Int.self, forKey: .nMels)
        fMin = try c.decode(Double.self, forKey: .fMin)
        fMax = try c.decode(Double.self, forKey: .fMax)
        logFloor = try c.decode(Double.self, forKey: .logFloor)
        melScale = try c.decodeIfPresent(MelScale.self, forKey: .melScale) ?? .htk
        melNorm = try c.decodeIfPresent(MelNorm.self, forKey: .melNorm) ?? .none
        center = try c.decodeIfPresent(Bool.self, forKey: .center) ?? false
        logBase = try c.decodeIfPresent(LogBase.self, forKey: .logBase) ?? .e
        dynamicRange = try c.decodeIfPresent(Double.self, forKey: .dynamicRange)
        offset = try c.decodeIfPresent(Double.self, forKey: .offset) ?? 0
        scale = try c.decodeIfPresent(Double.self, forKey: .scale) ?? 1
    }

    /// Writes the native keys always and the others only where they differ from
    /// the native definition, so a native config reads as before.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sampleRate, forKey: .sampleRate)
        try c.encode(nFFT, forKey: .nFFT)
        try c.encode(winLength, forKey: .winLength)
        try c.encode(hopLength, forKey: .hopLength)
        try c.encode(nMels, forKey: .nMels)
        try c.encode(fMin, forKey: .fMin)
        try c.encode(fMax, forKey: .fMax)
        try c.encode(logFloor, forKey: .logFloor)
        if melScale != .htk { try c.encode(melScale, forKey: .melScale) }
        if melNorm != .none { try c.encode(melNorm, forKey: .melNorm) }
        if center { try c.encode(center, forKey: .center) }
        if logBase != .e { try c.encode(logBase, forKey: .logBase) }
        try c.encodeIfPresent(dynamicRange, forKey: .dynamicRange)
        if offset != 0 { try c.encode(offset, forKey: .offset) }
        if scale != 1 { try c.encode(scale, forKey: .scale) }
    }

    public func validate(path: String, section: String) throws {
        func fail(_ key: CodingKeys, _ why: String) -> LasrError {
            LasrError(.invalidConfig, path: path, "\(section).\(key.rawValue): \(why)")
        }
        if sampleRate <= 0 { throw fail(.sampleRate, "must be positive, got \(sampleRate)") }
        if winLength <= 0 { throw fail(.winLength, "must be positive, got \(winLength)") }
        if hopLength <= 0 { throw fail(.hopLength, "must be positive, got \(hopLength)") }
        if nFFT < winLength { throw fail(.nFFT, "must be at least win_length (\(winLength)), got \(nFFT)") }
        if nMels <= 0 { throw fail(.nMels, "must be positive, got \(nMels)") }
        if fMin < 0 || fMin >= fMax { throw fail(.fMin, "must satisfy 0 ≤ f_min < f_max, got \(fMin)") }
        if fMax > Double(sampleRate) / 2 {
            throw fail(.fMax, "must not exceed the Nyquist frequency \(sampleRate / 2) Hz, got \(fMax)")
        }
        if logFloor <= 0 { throw fail(.logFloor, "must be positive, got \(logFloor)") }
        if let range = dynamicRange, !(range > 0) { throw fail(.dynamicRange, "must be positive, got \(range)") }
        if !(scale != 0 && scale.isFinite) { throw fail(.scale, "must be a nonzero number, got \(scale)") }
        if !offset.isFinite { throw fail(.offset, "must be a number, got \(offset)") }
    }

    /// Frames of a signal of `sampleCount` samples: whole windows only, or with
    /// `center` one frame per whole hop (frame `t` centered on sample `t·hop`).
    public func frameCount(sampleCount: Int) -> Int {
        if center { return sampleCount / hopLength }
        return sampleCount < winLength ? 0 : 1 + (sampleCount - winLength) / hopLength
    }

    /// Seconds between frames.
    public var frameShift: Double { Double(hopLength) / Double(sampleRate) }
}
