import Foundation
import LasrCore
import LasrNN

/// Attention of the decoder over the encoder frames — where the model listens.
///
/// For decoder state `s_i` (the LSTM output of step i), encoder output `H` (`T′ × d`)
/// and the previous weights `α_{i−1}`:
///
/// **Location-aware** (Chorowski et al. 2015, "Attention-Based Models for Speech Recognition"):
///
///     K   = H·W_kᵀ                                    keys, T′ × A, once per utterance
///     f_i = F ∗ α_{i−1}                               n_f filters of width 2r+1, zero padding r
///     e_ij = wᵀ · tanh(W_q·s_i + b_q + K_j + U·f_ij)
///     α_i = softmax_j(e_i)
///
/// `U·(F ∗ α)` equals `(U·F) ∗ α`, so the two location layers fold into one A × (2r+1)
/// kernel at load, and each step is one GEMM over an im2col of `α_{i−1}`.
///
/// **Scaled dot-product**:
///
///     q_i = W_q·s_i + b_q,  K = H·W_kᵀ + b_k,  α_i = softmax_j(q_i·K_jᵀ / √A)
///
/// In both, the context is the attention-weighted sum of the encoder frames,
/// `c_i = Σ_j α_ij·H_j` (the values are `H` itself), and `α_i` is kept: it is the
/// alignment from which timestamps and the attention dumps come.
public final class Attention {
    public let kind: DecoderConfig.Attention.Kind
    public let dim: Int
    private let query: Linear
    private let key: Linear
    /// Location only: the folded kernel `U·F`, `A × (2r+1)`, and the score vector `w`.
    private let locationKernel: [Float]
    private let radius: Int
    private let score: [Float]

    public init(_ store: WeightStore, _ prefix: String, config: DecoderConfig.Attention, queryDim: Int, valueDim: Int) throws {
        kind = config.type
        dim = config.dim
        query = try Linear(store, prefix + ".query", in: queryDim, out: dim).forFewRows()
        switch config.type {
        case .location:
            let filters = config.filters ?? 0, radius = config.radius ?? 0
            let width = 2 * radius + 1
            key = try Linear(store, prefix + ".key", in: valueDim, out: dim, bias: false)
            let f = try store.take(prefix + ".loc_conv.weight", [filters, 1, width])
            let u = try store.take(prefix + ".loc_proj.weight", [dim, filters])
            var g = [Float](repeating: 0, count: dim * width)
            for a in 0..<dim {
                for k in 0..<width {
                    var sum: Float = 0
                    for n in 0..<filters { sum += u[a * filters + n] * f[n * width + k] }
                    g[a * width + k] = sum
                }
            }
            locationKernel = g
            self.radius = radius
            score = try store.take(prefix + ".score.weight", [1, dim])
        case .dot:
            key = try Linear(store, prefix + ".key", in: valueDim, out: dim, bias: true)
            locationKernel = []
            radius = 0
            score = []
        }
    }

    /// Keys `K` (`T′ × A`) of an utterance's encoder output, computed once.
    public func keys(for encoder: Matrix) -> Matrix { key.apply(encoder) }

    /// Scratch space for `weights`, sized once per utterance and beam.
    public final class Workspace {
        var q: [Float] = []
        var patches: [Float] = []
        var location: [Float] = []
        /// Room for `rows` queries and `scored` (row, frame) pairs in all.
        func reserve(rows: Int, scored: Int, dim: Int, width: Int) {
            if q.count < rows * dim { q = [Float](repeating: 0, count: rows * dim) }
            if patches.count < scored * width { patches = [Float](repeating: 0, count: scored * width) }
            if location.count < scored * dim { location = [Float](repeating: 0, count: scored * dim) }
        }
        public init() {}
    }

    /// New weights `α_i` (`rows × T′`, into `alpha`) for decoder states `s` (`rows × h`)
    /// given the previous weights (`rows × T′`, used by location-aware attention).
    /// Row r scores only the frames in `ranges[r]`; the others get weight 0.
    public func weights(states s: UnsafePointer<Float>, rows: Int, keys: Matrix,
                        previous: UnsafePointer<Float>, into alpha: UnsafeMutablePointer<Float>,
                        ranges: [Range<Int>], workspace ws: Workspace) {
        let frames = keys.rows, a = dim, width = 2 * radius + 1
        let scored = ranges.reduce(0) { $0 + $1.count }
        ws.reserve(rows: rows, scored: scored, dim: a, width: kind == .location ? width : 0)
        if kind == .location {
            for r in 0..<rows { (alpha + r * frames).update(repeating: -Float.infinity, count: frames) }
        }
        ws.q.withUnsafeMutableBufferPointer { q in
            query.apply(s, rows: rows, into: q.baseAddress!)
            keys.data.withUnsafeBufferPointer { k in
                switch kind {
                case .dot:
                    // One head of the scaled dot-product attention Whisper's layers use,
                    // over the frames in the row's window; the frames outside get 0.
                    for r in 0..<rows {
                        let range = ranges[r], row = alpha + r * frames
                        row.update(repeating: 0, count: frames)
                        guard !range.isEmpty else { continue }
                        MultiHeadAttention.weights(q: q.baseAddress! + r * a, ldq: a, k: k.baseAddress! + range.lowerBound * a,
                                                   ldk: a, queries: 1, keys: range.count, headDim: a,
                                                   into: row + range.lowerBound, ldScores: frames)
                    }
                case .location:
                    locationEnergies(q: q.baseAddress!, keys: k.baseAddress!, rows: rows, frames: frames,
                                     previous: previous, into: alpha, ranges: ranges, scored: scored, ws: ws, width: width)
                    for r in 0..<rows { Activations.softmax(alpha + r * frames, count: frames) }
                }
            }
        }
    }

    private func locationEnergies(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, rows: Int, frames: Int,
                                  previous: UnsafePointer<Float>, into e: UnsafeMutablePointer<Float>,
                                  ranges: [Range<Int>], scored: Int, ws: Workspace, width: Int) {
        let a = dim
        // im2col of α_{i−1} over the scored frames: patch (r, j) holds α[r][j − radius … j + radius].
        ws.patches.withUnsafeMutableBufferPointer { p in
            var row = p.baseAddress!
            for r in 0..<rows {
                let prev = previous + r * frames
                for j in ranges[r] {
                    // Taps t = j − radius … j + radius; those outside the frames are 0.
                    let lo = max(0, j - radius), hi = min(frames, j + radius + 1)
                    let skip = lo - (j - radius)
                    if skip > 0 { row.update(repeating: 0, count: skip) }
                    (row + skip).update(from: prev + lo, count: hi - lo)
                    if skip + hi - lo < width { (row + skip + hi - lo).update(repeating: 0, count: width - skip - (hi - lo)) }
                    row += width
                }
            }
            ws.location.withUnsafeMutableBufferPointer { loc in
                locationKernel.withUnsafeBufferPointer { g in
                    BLAS.gemm(p.baseAddress!, g.baseAddress!, loc.baseAddress!, m: scored, n: a, k: width, transB: true)
                }
                // e_rj = w · tanh(q_r + K_j + loc_rj), eight lanes of A at a time.
                score.withUnsafeBufferPointer { w in
                    let wRaw = UnsafeRawPointer(w.baseAddress!)
                    var lRow = loc.baseAddress!
                    for r in 0..<rows {
                        let qRaw = UnsafeRawPointer(q + r * a)
                        for j in ranges[r] {
                            let kRaw = UnsafeRawPointer(keys + j * a)
                            let lRaw = UnsafeRawPointer(lRow)
                            var acc = SIMD8<Float>()
                            var c = 0
                            while c + 8 <= a {
                                let off = c * 4
                                let v = qRaw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
                                    + kRaw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
                                    + lRaw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
                                acc = acc.adding(Activations.tanh(v), times: wRaw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self))
                                c += 8
                            }
                            var sum = acc.sum()
                            while c < a {
                                sum += Foundation.tanh(q[r * a + c] + keys[j * a + c] + lRow[c]) * w[c]
                                c += 1
                            }
                            e[r * frames + j] = sum
                            lRow += a
                        }
                    }
                }
            }
        }
    }
}

/// Scaled dot-product attention (Vaswani et al. 2017), the one implementation of
/// `softmax(QKᵀ/√d_k)·V` in lasr. Whisper's layers run it with H heads:
///
///     head_h(Q, K, V) = softmax(Q_h·K_hᵀ / √d_k + M)·V_h,   d_k = d / H
///
/// where `Q_h`, `K_h`, `V_h` are the columns `h·d_k ..< (h+1)·d_k` of the projected
/// queries, keys and values, and `M` is 0 or, for causal self-attention, −∞ on keys
/// after the query's own position. The heads are concatenated and projected by the
/// caller's output layer. The native model's `dot` attention (above) is one head,
/// `H = 1`, `d_k = A`, through `weights`; its values are the encoder frames `H`,
/// summed by the speller with the same weights whichever attention kind made them.
public enum MultiHeadAttention {
    /// `softmax(Q·Kᵀ/√headDim + M)` of one head: `queries × keys` weights into
    /// `scores` (rows `ldScores` apart, default `keys`). With `causalOffset` = n,
    /// query `i` sees keys `0 … i + n`; the hidden ones get weight 0.
    public static func weights(q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int,
                               queries: Int, keys: Int, headDim: Int, causalOffset: Int? = nil,
                               into scores: UnsafeMutablePointer<Float>, ldScores: Int? = nil) {
        let scale = 1 / Float(headDim).squareRoot()
        let ld = ldScores ?? keys
        if queries == 1 {
            // One query (a sequence's own step, or one native hypothesis): a
            // matrix-vector product reads the keys in place, where sgemm would first
            // copy them into its packed layout.
            let visible = causalOffset.map { min(keys, $0 + 1) } ?? keys
            BLAS.gemv(k, q, scores, m: visible, n: headDim, lda: ldk, alpha: scale)
            if visible < keys { (scores + visible).update(repeating: 0, count: keys - visible) }
            Activations.softmax(scores, count: visible)
            return
        }
        BLAS.gemm(q, k, scores, m: queries, n: keys, k: headDim, transB: true, alpha: scale, lda: ldq, ldb: ldk, ldc: ld)
        for i in 0..<queries {
            let row = scores + i * ld
            var visible = keys
            if let n = causalOffset {
                visible = min(keys, i + n + 1)
                if visible < keys { (row + visible).update(repeating: 0, count: keys - visible) }
            }
            Activations.softmax(row, count: visible)
        }
    }

    /// Writes `queries × (heads·headDim)` outputs for `queries` query rows against
    /// `keys` key/value rows. Rows of `q`, `k`, `v`, `out` are `ldq`, `ldk`, `ldv`,
    /// `ldo` floats apart. With `causalOffset` = n, query `i` sees keys `0 … i + n`.
    /// `scores` needs `queries × keys` floats; when `weightsOut` is given, head
    /// `h`'s weights are copied to `weightsOut + h·queries·keys`.
    public static func attend(q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int,
                              v: UnsafePointer<Float>, ldv: Int, queries: Int, keys: Int, heads: Int, headDim: Int,
                              causalOffset: Int? = nil, out: UnsafeMutablePointer<Float>, ldo: Int,
                              scores: UnsafeMutablePointer<Float>, weightsOut: UnsafeMutablePointer<Float>? = nil) {
        for h in 0..<heads {
            let off = h * headDim
            weights(q: q + off, ldq: ldq, k: k + off, ldk: ldk, queries: queries, keys: keys, headDim: headDim,
                    causalOffset: causalOffset, into: scores)
            if let weightsOut { (weightsOut + h * queries * keys).update(from: scores, count: queries * keys) }
            if queries == 1 {
                // From two queries on (the beam's rows against one window) sgemm's one
                // call beats a call per row (`lasr bench --stage decoder`: 15.0 against 16.5 ms a step).
                let visible = causalOffset.map { min(keys, $0 + 1) } ?? keys
                BLAS.gemv(v + off, scores, out + off, m: visible, n: headDim, lda: ldv, transA: true)
            } else {
                BLAS.gemm(scores, v + off, out + off, m: queries, n: headDim, k: keys, lda: keys, ldb: ldv, ldc: ldo)
            }
        }
    }
}
