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
public final class ConvEncoder {
    public let config: EncoderConfig
    public let inputBands: Int
    private let mean: [Float]
    private let invStd: [Float]
    private let conv1: Linear   // C × 9 (one input channel, kernel 3×3)
    private let conv2: Linear   // C × (3·3·C), columns ordered (kt, kf, c_in)
    private let project: Linear // d × (F′·C), columns ordered (f, c)
    private let blocks: [Block]
    private let finalNorm: LayerNorm

    struct Block {
        let depthwise: DepthwiseConv1d
        let norm: LayerNorm
        let expand: Linear
        let contract: Linear
    }

    public init(_ store: WeightStore, config: EncoderConfig, bands: Int) throws {
        self.config = config
        inputBands = bands
        let c = config.subsamplingChannels, d = config.dModel
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
        blocks = try (0..<config.numBlocks).map { i in
            let p = "encoder.blocks.\(i)"
            return Block(
                depthwise: try DepthwiseConv1d(store, p + ".dw", channels: d, kernel: config.kernelSize),
                norm: try LayerNorm(store, p + ".norm", dim: d, eps: eps),
                expand: try Linear(store, p + ".ff1", in: d, out: config.ffMult * d),
                contract: try Linear(store, p + ".ff2", in: config.ffMult * d, out: d))
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
        let c = config.subsamplingChannels, d = config.dModel
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
                        for block in blocks {
                            block.depthwise.apply(o, frames: t2, into: yp)
                            block.norm.apply(yp, rows: t2, into: yp)
                            block.expand.apply(yp, rows: t2, into: ip)
                            Activations.silu(ip, count: ib.count)
                            block.contract.apply(ip, rows: t2, into: o, accumulate: true)
                        }
                        finalNorm.apply(o, rows: t2, into: o)
                    }
                }
            }
        }
        return out
    }
}
