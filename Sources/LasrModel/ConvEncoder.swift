import LasrCore
import LasrNN

/// The convolutional encoder (docs/model-format.md, "Encoder"):
///
///     x = (F − mean) / std                                    T × 80
///     x = ReLU(Conv2d(1→C, 3×3, stride 2, pad 1)(x))          C × T₁ × 40
///     x = ReLU(Conv2d(C→C, 3×3, stride 2, pad 1)(x))          C × T′ × 20
///     x = Linear(C·20 → d)(flatten(x))                         T′ × d
///     N × { y = DepthwiseConv1d(d, K)(x); y = LayerNorm(y);
///           x = x + Linear(m·d → d)(SiLU(Linear(d → m·d)(y))) }
///     H = LayerNorm(x)                                         T′ × d
///
/// The 2-D convolutions run as im2col + GEMM on a channels-last layout; their
/// weights are permuted once at load to match it.
public final class ConvEncoder: SpeechEncoder {
    public let config: EncoderConfig
    public let inputBands: Int
    private let channels: Int
    private let mean: [Float]
    private let invStd: [Float]
    private let conv1: Linear   // C × 9 (one input channel, kernel 3×3)
    private let conv2: Linear   // C × (3·3·C), columns ordered (kt, kf, c_in)
    private let project: Linear // d × (F′·C), columns ordered (f, c)
    private let blocks: [ConvBlock]
    private let finalNorm: LayerNorm

    public init(_ store: WeightStore, config: EncoderConfig, bands: Int) throws {
        self.config = config
        inputBands = bands
        // A validated `type: conv` section has both (EncoderConfig.validate).
        let c = config.subsamplingChannels ?? 0, d = config.dModel
        channels = c
        mean = try store.take("normalizer.mean", [bands])
        invStd = try store.take("normalizer.std", [bands]).map { 1 / $0 }
        let w1 = try store.take("encoder.subsampling.conv1.weight", [c, 1, 3, 3])
        conv1 = Linear(inFeatures: 9, outFeatures: c, weight: w1,
                       bias: try store.take("encoder.subsampling.conv1.bias", [c]))
        let w2 = try store.take("encoder.subsampling.conv2.weight", [c, c, 3, 3])
        var w2cl = [Float](repeating: 0, count: w2.count)
        for o in 0..<c { for i in 0..<c { for k in 0..<9 { w2cl[o * 9 * c + k * c + i] = w2[(o * c + i) * 9 + k] } } }
        conv2 = Linear(inFeatures: 9 * c, outFeatures: c, weight: w2cl,
                       bias: try store.take("encoder.subsampling.conv2.bias", [c]))
        let f2 = ConvEncoder.halved(ConvEncoder.halved(bands))
        let wo = try store.take("encoder.subsampling.out.weight", [d, c * f2])
        var wocl = [Float](repeating: 0, count: wo.count)
        for o in 0..<d { for ch in 0..<c { for f in 0..<f2 { wocl[o * c * f2 + f * c + ch] = wo[o * c * f2 + ch * f2 + f] } } }
        project = Linear(inFeatures: c * f2, outFeatures: d, weight: wocl,
                         bias: try store.take("encoder.subsampling.out.bias", [d]))
        let eps = Float(config.layerNormEps)
        blocks = try (0..<(config.numBlocks ?? 0)).map { i in
            try ConvBlock(store, "encoder.blocks.\(i)", width: d, kernel: config.kernelSize, ffMult: config.ffMult, eps: eps)
        }
        finalNorm = try LayerNorm(store, "encoder.norm", dim: d, eps: eps)
    }

    /// Length after one stride-2, pad-1, kernel-3 convolution: ⌈n/2⌉.
    static func halved(_ n: Int) -> Int { (n + 1) / 2 }

    /// Encoder frames for `frames` feature frames.
    public func outputFrames(_ frames: Int) -> Int { ConvEncoder.halved(ConvEncoder.halved(frames)) }

    /// Encodes raw log-mel features (`T × bands`) into `T′ × d`.
    public func callAsFunction(_ features: Matrix) -> Matrix {
        precondition(features.cols == inputBands, "encoder expects \(inputBands) bands, got \(features.cols)")
        let c = channels, d = config.dModel
        let t0 = features.rows, f0 = inputBands
        let t1 = ConvEncoder.halved(t0), f1 = ConvEncoder.halved(f0)
        let t2 = ConvEncoder.halved(t1), f2 = ConvEncoder.halved(f1)
        guard t0 > 0 else { return Matrix(rows: 0, cols: d) }

        // Element loops go through pointers: indexing a `var` array checks its uniqueness on every store.
        var x = features.data
        x.withUnsafeMutableBufferPointer { xb in
            mean.withUnsafeBufferPointer { m in
                invStd.withUnsafeBufferPointer { s in
                    for t in 0..<t0 {
                        let row = xb.baseAddress! + t * f0
                        for f in 0..<f0 { row[f] = (row[f] - m[f]) * s[f] }
                    }
                }
            }
        }

        // conv1: patches (t1·f1) × 9 → (t1, f1, C)
        var patches = [Float](repeating: 0, count: t1 * f1 * 9)
        patches.withUnsafeMutableBufferPointer { p in
            x.withUnsafeBufferPointer { xb in
                for t in 0..<t1 {
                    for f in 0..<f1 {
                        let row = p.baseAddress! + (t * f1 + f) * 9
                        for kt in 0..<3 {
                            let ti = 2 * t + kt - 1
                            guard ti >= 0 && ti < t0 else { continue }
                            for kf in 0..<3 {
                                let fi = 2 * f + kf - 1
                                if fi >= 0 && fi < f0 { row[kt * 3 + kf] = xb[ti * f0 + fi] }
                            }
                        }
                    }
                }
            }
        }
        var h1 = [Float](repeating: 0, count: t1 * f1 * c)
        patches.withUnsafeBufferPointer { p in
            h1.withUnsafeMutableBufferPointer { h in
                conv1.apply(p.baseAddress!, rows: t1 * f1, into: h.baseAddress!)
                Activations.relu(h.baseAddress!, count: h.count)
            }
        }

        // conv2: patches (t2·f2) × (3·3·C) in (kt, kf, c) order → (t2, f2, C)
        patches = [Float](repeating: 0, count: t2 * f2 * 9 * c)
        patches.withUnsafeMutableBufferPointer { p in
            h1.withUnsafeBufferPointer { h in
                for t in 0..<t2 {
                    for f in 0..<f2 {
                        let row = p.baseAddress! + (t * f2 + f) * 9 * c
                        for kt in 0..<3 {
                            let ti = 2 * t + kt - 1
                            guard ti >= 0 && ti < t1 else { continue }
                            for kf in 0..<3 {
                                let fi = 2 * f + kf - 1
                                guard fi >= 0 && fi < f1 else { continue }
                                (row + (kt * 3 + kf) * c).update(from: h.baseAddress! + (ti * f1 + fi) * c, count: c)
                            }
                        }
                    }
                }
            }
        }
        var h2 = [Float](repeating: 0, count: t2 * f2 * c)
        patches.withUnsafeBufferPointer { p in
            h2.withUnsafeMutableBufferPointer { h in
                conv2.apply(p.baseAddress!, rows: t2 * f2, into: h.baseAddress!)
                Activations.relu(h.baseAddress!, count: h.count)
            }
        }

        // Linear(f2·C → d), then the conv blocks with the residual accumulated in place.
        var out = Matrix(rows: t2, cols: d)
        var y = [Float](repeating: 0, count: t2 * d)
        var inner = [Float](repeating: 0, count: t2 * config.ffMult * d)
        h2.withUnsafeBufferPointer { h in
            out.data.withUnsafeMutableBufferPointer { o in
                y.withUnsafeMutableBufferPointer { yb in
                    inner.withUnsafeMutableBufferPointer { ib in
                        let o = o.baseAddress!, yp = yb.baseAddress!, ip = ib.baseAddress!
                        project.apply(h.baseAddress!, rows: t2, into: o)
                        for block in blocks { block.apply(o, frames: t2, scratch: yp, inner: ip) }
                        finalNorm.apply(o, rows: t2, into: o)
                    }
                }
            }
        }
        return out
    }
}

/// One conv block: `x + Linear(m·d → d)(SiLU(Linear(d → m·d)(LayerNorm(DepthwiseConv1d(x)))))`.
struct ConvBlock {
    let depthwise: DepthwiseConv1d
    let norm: LayerNorm
    let expand: Linear
    let contract: Linear
    let inner: Int

    init(_ store: WeightStore, _ prefix: String, width: Int, kernel: Int, ffMult: Int, eps: Float) throws {
        depthwise = try DepthwiseConv1d(store, prefix + ".dw", channels: width, kernel: kernel)
        norm = try LayerNorm(store, prefix + ".norm", dim: width, eps: eps)
        expand = try Linear(store, prefix + ".ff1", in: width, out: ffMult * width)
        contract = try Linear(store, prefix + ".ff2", in: ffMult * width, out: width)
        inner = ffMult * width
    }

    /// In place on `x` (`frames × width`); `scratch` holds `frames·width` floats and
    /// `inner` `frames·ff_mult·width`.
    func apply(_ x: UnsafeMutablePointer<Float>, frames: Int, scratch: UnsafeMutablePointer<Float>,
               inner hidden: UnsafeMutablePointer<Float>) {
        depthwise.apply(x, frames: frames, into: scratch)
        norm.apply(scratch, rows: frames, into: scratch)
        expand.apply(scratch, rows: frames, into: hidden)
        Activations.silu(hidden, count: frames * inner)
        contract.apply(hidden, rows: frames, into: x, accumulate: true)
    }
}
