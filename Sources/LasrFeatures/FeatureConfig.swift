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

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case sampleRate = "sample_rate"
        case nFFT = "n_fft"
        case winLength = "win_length"
        case hopLength = "hop_length"
        case nMels = "n_mels"
        case fMin = "f_min"
        case fMax = "f_max"
        case logFloor = "log_floor"
    }

    public static var allowedKeys: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

    /// Every key is required: a model's features must be stated, not guessed.
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
    }

    /// Frames of a signal of `sampleCount` samples: whole windows only.
    public func frameCount(sampleCount: Int) -> Int {
        sampleCount < winLength ? 0 : 1 + (sampleCount - winLength) / hopLength
    }

    /// Seconds between frames.
    public var frameShift: Double { Double(hopLength) / Double(sampleRate) }
}
