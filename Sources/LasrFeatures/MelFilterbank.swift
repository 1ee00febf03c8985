import Foundation

/// Triangular mel filters on the HTK scale, stored sparsely: each filter is
/// nonzero over a short run of FFT bins. Weights are computed in double precision,
/// as in the reference (`training/lasr_train/features.py`).
struct MelFilterbank {
    /// First bin of each filter's nonzero run.
    let firstBin: [Int]
    /// Offset of each filter's weights in `weights`; `offsets[m + 1] - offsets[m]` is the run length.
    let offsets: [Int]
    let weights: [Float]

    static func hzToMel(_ f: Double) -> Double { 2595 * log10(1 + f / 700) }
    static func melToHz(_ m: Double) -> Double { 700 * (pow(10, m / 2595) - 1) }

    init(config: FeatureConfig) {
        let bins = config.nFFT / 2 + 1
        let lo = Self.hzToMel(config.fMin), hi = Self.hzToMel(config.fMax)
        let edges = (0..<(config.nMels + 2)).map { i in
            Self.melToHz(lo + (hi - lo) * Double(i) / Double(config.nMels + 1))
        }
        var firstBin: [Int] = [], offsets: [Int] = [0], weights: [Float] = []
        for m in 0..<config.nMels {
            let (left, center, right) = (edges[m], edges[m + 1], edges[m + 2])
            var first = -1
            for k in 0..<bins {
                let f = Double(k) * Double(config.sampleRate) / Double(config.nFFT)
                let w = max(0, min((f - left) / (center - left), (right - f) / (right - center)))
                if w > 0 {
                    if first < 0 { first = k }
                    // Zeros inside a run (none for a triangle) would still be stored; runs are contiguous.
                    weights.append(Float(w))
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
