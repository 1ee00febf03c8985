import Foundation

/// Triangular mel filters on the HTK or the Slaney scale, stored sparsely: each
/// filter is nonzero over a short run of FFT bins. Weights are computed in double
/// precision, as in the reference (`training/lasr_train/features.py`).
struct MelFilterbank {
    /// First bin of each filter's nonzero run.
    let firstBin: [Int]
    /// Offset of each filter's weights in `weights`; `offsets[m + 1] - offsets[m]` is the run length.
    let offsets: [Int]
    let weights: [Float]

    static func hzToMel(_ f: Double, scale: FeatureConfig.MelScale = .htk) -> Double {
        switch scale {
        case .htk: return 2595 * log10(1 + f / 700)
        case .slaney:
            // Slaney's Auditory Toolbox: 3 mels per 200 Hz up to 1 kHz, then 27 mels per factor 6.4.
            if f < 1000 { return f * 3 / 200 }
            return 15 + log(f / 1000) * 27 / log(6.4)
        }
    }

    static func melToHz(_ m: Double, scale: FeatureConfig.MelScale = .htk) -> Double {
        switch scale {
        case .htk: return 700 * (pow(10, m / 2595) - 1)
        case .slaney:
            if m < 15 { return m * 200 / 3 }
            return 1000 * exp((m - 15) * log(6.4) / 27)
        }
    }

    init(config: FeatureConfig) {
        let bins = config.nFFT / 2 + 1
        let scale = config.melScale
        let lo = Self.hzToMel(config.fMin, scale: scale), hi = Self.hzToMel(config.fMax, scale: scale)
        let edges = (0..<(config.nMels + 2)).map { i in
            Self.melToHz(lo + (hi - lo) * Double(i) / Double(config.nMels + 1), scale: scale)
        }
        var firstBin: [Int] = [], offsets: [Int] = [0], weights: [Float] = []
        for m in 0..<config.nMels {
            let (left, center, right) = (edges[m], edges[m + 1], edges[m + 2])
            let norm = config.melNorm == .slaney ? 2 / (right - left) : 1
            var first = -1
            for k in 0..<bins {
                let f = Double(k) * Double(config.sampleRate) / Double(config.nFFT)
                let w = max(0, min((f - left) / (center - left), (right - f) / (right - center)))
                if w > 0 {
                    if first < 0 { first = k }
                    // Zeros inside a run (none for a triangle) would still be stored; runs are contiguous.
                    weights.append(Float(w * norm))
                } else if first >= 0 {
                    break
                }
            }
            firstBin.append(max(first, 0))
            offsets.append(weights.count)
        }
        self.firstBin = firstBin
        self.offsets = offsets
        self.weights = weights
    }
}
