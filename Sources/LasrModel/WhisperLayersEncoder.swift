import LasrCore
import LasrNN

/// The `type: whisper` encoder (docs/model-format.md, "Encoder"): a Whisper encoder's
/// front end and first layers, read at the native 40 ms frame rate.
///
///     x = (F − mean) / std                                     T × 80
///     x = GELU(Conv1d(80 → S, 3, pad 1)(x))                    T × S
///     x = GELU(Conv1d(S → S, 3, stride 2, pad 1)(x))           T₁ × S   (20 ms)
///     x[j] = (x[2j] + x[2j+1]) / 2 + P[j]                       T′ × S   (40 ms; a lone last frame is halved)
///     L × { x = x + Attn(LayerNorm(x)); x = x + MLP(LayerNorm(x)) }
///     x = Linear(S → d)(LayerNorm(x))                           T′ × d
///     N × ConvBlock(x); x = LayerNorm(x) when N > 0
///
/// P is every second row of Whisper's positional table (the recipe stores the `ctx`
/// rows it uses). Averaging frame pairs before the attention layers halves their cost,
/// and the speller's location-aware attention and the CTC head read the frame rate
/// they were built for (training/README.md, "Whisper's layers as the encoder").
public final class WhisperLayersEncoder: SpeechEncoder {
    public let config: EncoderConfig
    public let inputBands: Int
    let layers: EncoderConfig.WhisperLayers
    private let mean: [Float]
    private let invStd: [Float]
    let conv1: Conv1d
    let conv2: Conv1d
    let positions: [Float]
    let blocks: [WhisperBlock]
    let postNorm: LayerNorm
    let project: Linear
    let convBlocks: [ConvBlock]
    let convNorm: LayerNorm?

    public init(_ store: WeightStore, config: EncoderConfig, bands: Int) throws {
        guard let w = config.whisper else {
            throw LasrError(.invalidModel, "encoder: type whisper without its whisper: block")
        }
        self.config = config
        inputBands = bands
        layers = w
        let s = w.state, d = config.dModel, eps = Float(config.layerNormEps)
        mean = try store.take("normalizer.mean", [bands])
        invStd = try store.take("normalizer.std", [bands]).map { 1 / $0 }
        conv1 = try Conv1d(store, "encoder.conv1", in: bands, out: s, kernel: 3, padding: 1)
        conv2 = try Conv1d(store, "encoder.conv2", in: s, out: s, kernel: 3, stride: 2, padding: 1)
        positions = try store.take("encoder.positional_embedding", [w.ctx, s])
        blocks = try (0..<w.layers).map {
            try WhisperBlock(store, "encoder.blocks.\($0)", width: s, heads: w.heads, ff: w.ff, cross: false)
        }
        postNorm = try LayerNorm(store, "encoder.ln_post", dim: s, eps: eps)
        project = try Linear(store, "encoder.proj", in: s, out: d)
        convBlocks = try (0..<w.convBlocks).map {
            try ConvBlock(store, "encoder.conv_blocks.\($0)", width: d, kernel: config.kernelSize, ffMult: config.ffMult, eps: eps)
        }
        convNorm = w.convBlocks > 0 ? try LayerNorm(store, "encoder.conv_norm", dim: d, eps: eps) : nil
    }

    public func outputFrames(_ frames: Int) -> Int { ConvEncoder.halved(ConvEncoder.halved(frames)) }

    /// Feature frames of the longest window the positional table covers (`4·ctx`: 30 s
    /// for Whisper's table); longer input is encoded window by window.
    public var maxFeatureFrames: Int { 4 * layers.ctx }

    public func callAsFunction(_ features: Matrix) -> Matrix {
        precondition(features.cols == inputBands, "encoder expects \(inputBands) bands, got \(features.cols)")
        guard features.rows > maxFeatureFrames else { return encodeWindow(features) }
        // Windows of a multiple of 4 frames: their outputs add up to outputFrames(T).
        var out = Matrix(rows: outputFrames(features.rows), cols: config.dModel)
        var row = 0
        for start in stride(from: 0, to: features.rows, by: maxFeatureFrames) {
            let end = min(features.rows, start + maxFeatureFrames)
            let window = Matrix(rows: end - start, cols: inputBands,
                                data: Array(features.data[(start * inputBands)..<(end * inputBands)]))
            let encoded = encodeWindow(window)
            out.data.replaceSubrange((row * config.dModel)..<((row + encoded.rows) * config.dModel), with: encoded.data)
            row += encoded.rows
        }
        return out
    }

    /// One window of at most `maxFeatureFrames` frames.
    func encodeWindow(_ features: Matrix) -> Matrix {
        let t0 = features.rows, s = layers.state, d = config.dModel
        guard t0 > 0 else { return Matrix(rows: 0, cols: d) }
        var x = features
        x.data.withUnsafeMutableBufferPointer { xb in
            mean.withUnsafeBufferPointer { m in
                invStd.withUnsafeBufferPointer { sd in
                    for t in 0..<t0 {
                        let row = xb.baseAddress! + t * inputBands
                        for f in 0..<inputBands { row[f] = (row[f] - m[f]) * sd[f] }
                    }
                }
            }
        }
        var h = conv1.apply(x)
        h.data.withUnsafeMutableBufferPointer { Activations.gelu($0.baseAddress!, count: $0.count) }
        var h2 = conv2.apply(h)
        h2.data.withUnsafeMutableBufferPointer { Activations.gelu($0.baseAddress!, count: $0.count) }
        let t1 = h2.rows, rows = (t1 + 1) / 2
        var pooled = [Float](repeating: 0, count: rows * s)
        var out = Matrix(rows: rows, cols: d)
        var scratch = [Float](repeating: 0, count: max(blocks.map { $0.scratchCount(rows: rows) }.max() ?? 0,
                                                          rows * d * (1 + config.ffMult)))
        var qkv = [Float](repeating: 0, count: 3 * rows * s)
        var scores = [Float](repeating: 0, count: rows * rows)
        pooled.withUnsafeMutableBufferPointer { pb in
            let p = pb.baseAddress!
            h2.data.withUnsafeBufferPointer { hb in
                positions.withUnsafeBufferPointer { pos in
                    for j in 0..<rows {
                        let a = hb.baseAddress! + 2 * j * s, row = p + j * s, e = pos.baseAddress! + j * s
                        if 2 * j + 1 < t1 {
                            for c in 0..<s { row[c] = 0.5 * (a[c] + a[s + c]) + e[c] }
                        } else {
                            for c in 0..<s { row[c] = 0.5 * a[c] + e[c] }
                        }
                    }
                }
            }
            scratch.withUnsafeMutableBufferPointer { sb in
                qkv.withUnsafeMutableBufferPointer { qb in
                    scores.withUnsafeMutableBufferPointer { sc in
                        for block in blocks {
                            block.encode(p, rows: rows, scratch: sb.baseAddress!, qkv: qb.baseAddress!, scores: sc.baseAddress!)
                        }
                    }
                }
                postNorm.apply(p, rows: rows, into: p)
                out.data.withUnsafeMutableBufferPointer { ob in
                    let o = ob.baseAddress!, y = sb.baseAddress!, inner = y + rows * d
                    project.apply(p, rows: rows, into: o)
                    for block in convBlocks { block.apply(o, frames: rows, scratch: y, inner: inner) }
                    convNorm?.apply(o, rows: rows, into: o)
                }
            }
        }
        return out
    }
}
