import Foundation
import LasrCore
import LasrNN

/// OpenAI's ten numbers that fix a Whisper network's shapes: the `whisper:` block of
/// a converted model's config.yaml (docs/model-format.md, "Whisper").
public struct WhisperDimensions: Sendable, Equatable, Codable, ConfigSection {
    public var nMels: Int
    public var nAudioCtx: Int
    public var nAudioState: Int
    public var nAudioHead: Int
    public var nAudioLayer: Int
    public var nVocab: Int
    public var nTextCtx: Int
    public var nTextState: Int
    public var nTextHead: Int
    public var nTextLayer: Int

    enum CodingKeys: String, CodingKey, CaseIterable {
        case nMels = "n_mels", nAudioCtx = "n_audio_ctx", nAudioState = "n_audio_state", nAudioHead = "n_audio_head"
        case nAudioLayer = "n_audio_layer", nVocab = "n_vocab", nTextCtx = "n_text_ctx", nTextState = "n_text_state"
        case nTextHead = "n_text_head", nTextLayer = "n_text_layer"
    }

    public static var allowedKeys: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

    public func validate(path: String, section: String) throws {
        func fail(_ why: String) -> LasrError { LasrError(.invalidConfig, path: path, "\(section): \(why)") }
        let all = [nMels, nAudioCtx, nAudioState, nAudioHead, nAudioLayer, nVocab, nTextCtx, nTextState, nTextHead, nTextLayer]
        if all.contains(where: { $0 <= 0 }) { throw fail("every dimension must be positive") }
        // The loader builds the layers before it reads their weights: a damaged count must not
        // ask for absurd memory (ConfigLimits in ModelConfig.swift).
        try ConfigLimits.check(["n_audio_layer": nAudioLayer, "n_text_layer": nTextLayer], in: 1...ConfigLimits.layers,
                               path: path, section: section)
        try ConfigLimits.check(["n_mels": nMels, "n_audio_ctx": nAudioCtx, "n_audio_state": nAudioState, "n_audio_head": nAudioHead,
                                "n_vocab": nVocab, "n_text_ctx": nTextCtx, "n_text_state": nTextState, "n_text_head": nTextHead],
                               in: 1...ConfigLimits.dimension, path: path, section: section)
        if nAudioState % nAudioHead != 0 { throw fail("n_audio_state \(nAudioState) is not a multiple of n_audio_head \(nAudioHead)") }
        if nTextState % nTextHead != 0 { throw fail("n_text_state \(nTextState) is not a multiple of n_text_head \(nTextHead)") }
        // Cross-attention projects encoder frames with n_text_state-wide layers.
        if nAudioState != nTextState { throw fail("n_audio_state \(nAudioState) differs from n_text_state \(nTextState)") }
    }

    /// Mel frames of one encoder window: the second convolution halves them.
    public var melFrames: Int { 2 * nAudioCtx }
}

/// One pre-norm transformer block: self-attention, optionally cross-attention over
/// the encoder output, and a GELU MLP (4× wide in Whisper), each as `x + f(LayerNorm(x))`.
struct WhisperBlock {
    let width: Int
    let heads: Int
    let ff: Int
    let attnNorm: LayerNorm
    let query: Linear, key: Linear, value: Linear, out: Linear
    let crossNorm: LayerNorm?
    let crossQuery: Linear?, crossKey: Linear?, crossValue: Linear?, crossOut: Linear?
    let mlpNorm: LayerNorm
    let mlpIn: Linear, mlpOut: Linear

    init(_ store: WeightStore, _ prefix: String, width: Int, heads: Int, ff: Int? = nil, cross: Bool) throws {
        self.width = width
        self.heads = heads
        let ff = ff ?? 4 * width
        self.ff = ff
        let eps: Float = 1e-5
        attnNorm = try LayerNorm(store, prefix + ".attn_ln", dim: width, eps: eps)
        query = try Linear(store, prefix + ".attn.query", in: width, out: width)
        key = try Linear(store, prefix + ".attn.key", in: width, out: width, bias: false)
        value = try Linear(store, prefix + ".attn.value", in: width, out: width)
        out = try Linear(store, prefix + ".attn.out", in: width, out: width)
        if cross {
            crossNorm = try LayerNorm(store, prefix + ".cross_attn_ln", dim: width, eps: eps)
            crossQuery = try Linear(store, prefix + ".cross_attn.query", in: width, out: width)
            crossKey = try Linear(store, prefix + ".cross_attn.key", in: width, out: width, bias: false)
            crossValue = try Linear(store, prefix + ".cross_attn.value", in: width, out: width)
            crossOut = try Linear(store, prefix + ".cross_attn.out", in: width, out: width)
        } else {
            (crossNorm, crossQuery, crossKey, crossValue, crossOut) = (nil, nil, nil, nil, nil)
        }
        mlpNorm = try LayerNorm(store, prefix + ".mlp_ln", dim: width, eps: eps)
        mlpIn = try Linear(store, prefix + ".mlp.0", in: width, out: ff)
        mlpOut = try Linear(store, prefix + ".mlp.2", in: ff, out: width)
    }

    /// Floats of `scratch` that `mlp` and `encode` need for `rows` rows.
    func scratchCount(rows: Int) -> Int { rows * (width + max(ff, width)) }

    /// `x += MLP(LayerNorm(x))` over `rows` rows, with `scratch` of `scratchCount(rows:)` floats.
    func mlp(_ x: UnsafeMutablePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>) {
        let normed = scratch, hidden = scratch + rows * width
        mlpNorm.apply(x, rows: rows, into: normed)
        mlpIn.apply(normed, rows: rows, into: hidden)
        Activations.gelu(hidden, count: rows * ff)
        mlpOut.apply(hidden, rows: rows, into: x, accumulate: true)
    }

    /// One encoder block in place on `x` (`rows × width`): every row attends to every
    /// row, then the MLP. `qkv` holds `3·rows·width` floats, `scores` `rows·rows`.
    func encode(_ x: UnsafeMutablePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>,
                qkv: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>) {
        let a = width, normed = scratch, attended = scratch + rows * a
        let q = qkv, k = q + rows * a, v = k + rows * a
        attnNorm.apply(x, rows: rows, into: normed)
        query.apply(normed, rows: rows, into: q)
        key.apply(normed, rows: rows, into: k)
        value.apply(normed, rows: rows, into: v)
        MultiHeadAttention.attend(q: q, ldq: a, k: k, ldk: a, v: v, ldv: a, queries: rows, keys: rows,
                                  heads: heads, headDim: a / heads, out: attended, ldo: a, scores: scores)
        out.apply(attended, rows: rows, into: x, accumulate: true)
        mlp(x, rows: rows, scratch: scratch)
    }
}

/// Whisper's audio encoder: two convolutions with GELU (the second of stride 2),
/// fixed sinusoidal positions, pre-norm self-attention blocks, a final LayerNorm.
public final class WhisperEncoder {
    public let dims: WhisperDimensions
    let conv1: Conv1d
    let conv2: Conv1d
    let positions: [Float]
    let blocks: [WhisperBlock]
    let postNorm: LayerNorm

    init(_ store: WeightStore, dims: WhisperDimensions) throws {
        self.dims = dims
        let a = dims.nAudioState
        conv1 = try Conv1d(store, "encoder.conv1", in: dims.nMels, out: a, kernel: 3, padding: 1)
        conv2 = try Conv1d(store, "encoder.conv2", in: a, out: a, kernel: 3, stride: 2, padding: 1)
        positions = try store.take("encoder.positional_embedding", [dims.nAudioCtx, a])
        blocks = try (0..<dims.nAudioLayer).map {
            try WhisperBlock(store, "encoder.blocks.\($0)", width: a, heads: dims.nAudioHead, cross: false)
        }
        postNorm = try LayerNorm(store, "encoder.ln_post", dim: a, eps: 1e-5)
    }

    /// Encodes one window of `2·n_audio_ctx` mel frames (`frames × n_mels`) into
    /// `n_audio_ctx × n_audio_state`. Whisper is trained on full 30 s windows only,
    /// so shorter audio is padded by the caller, not here.
    public func encode(_ mel: Matrix) -> Matrix {
        precondition(mel.rows == dims.melFrames && mel.cols == dims.nMels,
                     "Whisper encoder: got \(mel.rows)×\(mel.cols) mel, expected \(dims.melFrames)×\(dims.nMels)")
        var h = conv1.apply(mel)
        h.data.withUnsafeMutableBufferPointer { Activations.gelu($0.baseAddress!, count: $0.count) }
        var x = conv2.apply(h)
        let rows = x.rows, a = dims.nAudioState
        x.data.withUnsafeMutableBufferPointer { xp in
            Activations.gelu(xp.baseAddress!, count: xp.count)
            for i in 0..<(rows * a) { xp[i] += positions[i] }
            var scratch = [Float](repeating: 0, count: blocks.map { $0.scratchCount(rows: rows) }.max() ?? 0)
            var qkv = [Float](repeating: 0, count: rows * a * 3)
            var scores = [Float](repeating: 0, count: rows * rows)
            scratch.withUnsafeMutableBufferPointer { s in
                qkv.withUnsafeMutableBufferPointer { b in
                    scores.withUnsafeMutableBufferPointer { sc in
                        for block in blocks {
                            block.encode(xp.baseAddress!, rows: rows, scratch: s.baseAddress!, qkv: b.baseAddress!,
                                         scores: sc.baseAddress!)
                        }
                    }
                }
            }
            postNorm.apply(xp.baseAddress!, rows: rows, into: xp.baseAddress!)
        }
        return x
    }
}

/// Whisper's text decoder: token and learned position embeddings, pre-norm blocks
/// of causal self-attention (keys and values cached per sequence), cross-attention
/// over the encoder output (keys and values computed once per window), a 4×-wide
/// GELU MLP; the output projection is the token embedding, transposed.
public final class WhisperDecoder {
    public let dims: WhisperDimensions
    let embedding: [Float]
    let positions: [Float]
    let blocks: [WhisperBlock]
    let finalNorm: LayerNorm

    init(_ store: WeightStore, dims: WhisperDimensions) throws {
        self.dims = dims
        let t = dims.nTextState
        embedding = try store.take("decoder.token_embedding.weight", [dims.nVocab, t])
        positions = try store.take("decoder.positional_embedding", [dims.nTextCtx, t])
        blocks = try (0..<dims.nTextLayer).map {
            try WhisperBlock(store, "decoder.blocks.\($0)", width: t, heads: dims.nTextHead, cross: true)
        }
        finalNorm = try LayerNorm(store, "decoder.ln", dim: t, eps: 1e-5)
    }

    /// Cross-attention keys and values of one encoded window, for every layer.
    public struct AudioContext {
        public let frames: Int
        let keys: [Matrix]
        let values: [Matrix]
    }

    public func audioContext(_ encoded: Matrix) -> AudioContext {
        AudioContext(frames: encoded.rows,
                     keys: blocks.map { $0.crossKey!.apply(encoded) },
                     values: blocks.map { $0.crossValue!.apply(encoded) })
    }

    /// The self-attention keys and values of one token sequence so far.
    public final class Cache {
        public fileprivate(set) var length = 0
        var keys: [[Float]]
        var values: [[Float]]

        /// Per layer, exactly the rows written so far: a forked hypothesis then
        /// copies what it uses, not the whole context's worth.
        init(layers: Int) {
            keys = Array(repeating: [], count: layers)
            values = keys
        }

        func reserve(layer: Int, floats: Int) {
            if keys[layer].count < floats {
                keys[layer] += [Float](repeating: 0, count: floats - keys[layer].count)
                values[layer] += [Float](repeating: 0, count: floats - values[layer].count)
            }
        }

        /// A copy that continues independently (a beam hypothesis that forks).
        public func copy() -> Cache {
            let c = Cache(layers: 0)
            (c.length, c.keys, c.values) = (length, keys, values)
            return c
        }

        /// Forgets everything after the first `count` tokens.
        public func truncate(to count: Int) { length = min(length, count) }
    }

    public func makeCache() -> Cache { Cache(layers: dims.nTextLayer) }

    /// Cross-attention weights of chosen heads, `[layer, head]` pairs, for every
    /// processed row: `weights[i]` is `rows × frames` for `heads[i]`.
    public struct CrossAttention {
        public let heads: [[Int]]
        public var weights: [Matrix]

        /// Asks for `heads`; `forward` fills `weights`.
        public init(heads: [[Int]]) {
            self.heads = heads
            weights = []
        }
    }

    /// Runs new tokens through the decoder: `sequences[i].tokens` continue the
    /// sequence whose past is `sequences[i].cache` (which is extended). Returns the
    /// logits of the last new token of each sequence (`sequences.count × n_vocab`),
    /// or of the rows `logitRows` (indices into all new tokens, in order). Every
    /// non-attention layer runs once for all rows together, so a beam costs one
    /// GEMM per layer and step.
    public func forward(_ sequences: [(tokens: [Int], cache: Cache)], audio: AudioContext, logitRows: [Int]? = nil,
                        crossAttention: inout CrossAttention?) -> Matrix {
        let t = dims.nTextState, rows = sequences.reduce(0) { $0 + $1.tokens.count }
        let heads = dims.nTextHead, headDim = t / heads
        var x = [Float](repeating: 0, count: rows * t)
        var starts: [Int] = []
        var row = 0
        for (tokens, cache) in sequences {
            starts.append(row)
            precondition(cache.length + tokens.count <= dims.nTextCtx,
                         "Whisper decoder: \(cache.length + tokens.count) tokens exceed n_text_ctx \(dims.nTextCtx)")
            for (j, token) in tokens.enumerated() {
                let pos = cache.length + j
                for c in 0..<t { x[row * t + c] = embedding[token * t + c] + positions[pos * t + c] }
                row += 1
            }
        }
        if crossAttention != nil {
            crossAttention!.weights = crossAttention!.heads.map { _ in Matrix(rows: rows, cols: audio.frames) }
        }
        let longest = sequences.map { $0.cache.length + $0.tokens.count }.max() ?? 0
        var scratch = [Float](repeating: 0, count: blocks.map { $0.scratchCount(rows: rows) }.max() ?? 0)
        var q = [Float](repeating: 0, count: rows * t)
        var scores = [Float](repeating: 0, count: rows * max(longest, audio.frames))
        var headWeights = [Float](repeating: 0, count: crossAttention == nil ? 0 : heads * rows * audio.frames)
        x.withUnsafeMutableBufferPointer { xp in
            scratch.withUnsafeMutableBufferPointer { s in
                q.withUnsafeMutableBufferPointer { qp in
                    scores.withUnsafeMutableBufferPointer { sc in
                        let normed = s.baseAddress!, attended = s.baseAddress! + rows * t
                        for (layer, block) in blocks.enumerated() {
                            // Causal self-attention: each sequence against its own cache.
                            block.attnNorm.apply(xp.baseAddress!, rows: rows, into: normed)
                            block.query.apply(normed, rows: rows, into: qp.baseAddress!)
                            for (i, (tokens, cache)) in sequences.enumerated() {
                                let r0 = starts[i], n = tokens.count, past = cache.length
                                cache.reserve(layer: layer, floats: (past + n) * t)
                                cache.keys[layer].withUnsafeMutableBufferPointer { kc in
                                    cache.values[layer].withUnsafeMutableBufferPointer { vc in
                                        block.key.apply(normed + r0 * t, rows: n, into: kc.baseAddress! + past * t)
                                        block.value.apply(normed + r0 * t, rows: n, into: vc.baseAddress! + past * t)
                                        MultiHeadAttention.attend(
                                            q: qp.baseAddress! + r0 * t, ldq: t, k: kc.baseAddress!, ldk: t,
                                            v: vc.baseAddress!, ldv: t, queries: n, keys: past + n, heads: heads,
                                            headDim: headDim, causalOffset: past, out: attended + r0 * t, ldo: t,
                                            scores: sc.baseAddress!)
                                    }
                                }
                            }
                            block.out.apply(attended, rows: rows, into: xp.baseAddress!, accumulate: true)
                            // Cross-attention: every row of every sequence against the same window.
                            block.crossNorm!.apply(xp.baseAddress!, rows: rows, into: normed)
                            block.crossQuery!.apply(normed, rows: rows, into: qp.baseAddress!)
                            let wanted = crossAttention?.heads.indices.filter { crossAttention!.heads[$0][0] == layer } ?? []
                            audio.keys[layer].data.withUnsafeBufferPointer { k in
                                audio.values[layer].data.withUnsafeBufferPointer { v in
                                    headWeights.withUnsafeMutableBufferPointer { hw in
                                        MultiHeadAttention.attend(
                                            q: qp.baseAddress!, ldq: t, k: k.baseAddress!, ldk: t, v: v.baseAddress!,
                                            ldv: t, queries: rows, keys: audio.frames, heads: heads, headDim: headDim,
                                            out: attended, ldo: t, scores: sc.baseAddress!,
                                            weightsOut: wanted.isEmpty ? nil : hw.baseAddress!)
                                    }
                                }
                            }
                            for w in wanted {
                                let head = crossAttention!.heads[w][1]
                                let from = head * rows * audio.frames
                                crossAttention!.weights[w].data = Array(headWeights[from..<(from + rows * audio.frames)])
                            }
                            block.crossOut!.apply(attended, rows: rows, into: xp.baseAddress!, accumulate: true)
                            block.mlp(xp.baseAddress!, rows: rows, scratch: s.baseAddress!)
                        }
                    }
                }
            }
        }
        for (tokens, cache) in sequences { cache.length += tokens.count }
        // Logits: LayerNorm, then the transposed token embedding, for the rows asked for.
        let picked = logitRows ?? sequences.indices.map { starts[$0] + sequences[$0].tokens.count - 1 }
        var last = [Float](repeating: 0, count: picked.count * t)
        for (j, r) in picked.enumerated() {
            for c in 0..<t { last[j * t + c] = x[r * t + c] }
        }
        var logits = Matrix(rows: picked.count, cols: dims.nVocab)
        last.withUnsafeMutableBufferPointer { lp in
            finalNorm.apply(lp.baseAddress!, rows: picked.count, into: lp.baseAddress!)
            embedding.withUnsafeBufferPointer { e in
                logits.data.withUnsafeMutableBufferPointer { out in
                    if picked.count <= 8 {
                        // A decoding step: read the (large) embedding once for the whole beam.
                        BLAS.fewRowsTimesTransposed(lp.baseAddress!, e.baseAddress!, out.baseAddress!,
                                                    rows: picked.count, n: dims.nVocab, k: t)
                    } else {
                        BLAS.gemm(lp.baseAddress!, e.baseAddress!, out.baseAddress!, m: picked.count, n: dims.nVocab,
                                  k: t, transB: true)
                    }
                }
            }
        }
        return logits
    }
}

/// A Whisper network: encoder and decoder over one weight file.
public final class WhisperNetwork {
    public let dims: WhisperDimensions
    public let encoder: WhisperEncoder
    public let decoder: WhisperDecoder

    /// Loads every tensor of docs/model-format.md "Whisper" from `store` with the
    /// shapes `dims` implies; a missing, misshapen or unused tensor is an error.
    public init(_ store: WeightStore, dims: WhisperDimensions) throws {
        self.dims = dims
        encoder = try WhisperEncoder(store, dims: dims)
        decoder = try WhisperDecoder(store, dims: dims)
        try store.finish()
    }
}
