import LasrCore

/// `y = x·Wᵀ + b`, PyTorch's `nn.Linear`: weight `out × in`, bias `out`.
public struct Linear: Sendable {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: [Float]
    public let bias: [Float]?
    /// Set by `forFewRows()` for layers applied to a beam's few rows at a time.
    private var packed: PackedWeights?

    public init(inFeatures: Int, outFeatures: Int, weight: [Float], bias: [Float]?) {
        precondition(weight.count == inFeatures * outFeatures && (bias?.count ?? outFeatures) == outFeatures)
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.weight = weight
        self.bias = bias
    }

    /// This layer with its weights also packed for products with at most
    /// `PackedWeights.maxRows` rows, where the build prefers that (`PackedWeights.preferred`;
    /// tests pass `true` to cover the packed path in any build).
    public func forFewRows(_ enabled: Bool = PackedWeights.preferred) -> Linear {
        guard enabled else { return self }
        var copy = self
        copy.packed = weight.withUnsafeBufferPointer { PackedWeights($0.baseAddress!, outputs: outFeatures, inputs: inFeatures) }
        return copy
    }

    public init(_ store: WeightStore, _ prefix: String, in inFeatures: Int, out outFeatures: Int, bias: Bool = true) throws {
        self.init(inFeatures: inFeatures, outFeatures: outFeatures,
                  weight: try store.take(prefix + ".weight", [outFeatures, inFeatures]),
                  bias: bias ? try store.take(prefix + ".bias", [outFeatures]) : nil)
    }

    /// `y[rows × out] = x[rows × in]·Wᵀ + b`, or `+=` when `accumulate` (a residual).
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        if let bias {
            bias.withUnsafeBufferPointer { b in
                for r in 0..<rows {
                    let row = y + r * outFeatures
                    if accumulate {
                        for j in 0..<outFeatures { row[j] += b[j] }
                    } else {
                        row.update(from: b.baseAddress!, count: outFeatures)
                    }
                }
            }
        }
        let beta: Float = (bias != nil || accumulate) ? 1 : 0
        if let packed, rows <= PackedWeights.maxRows {
            if beta == 0 { y.update(repeating: 0, count: rows * outFeatures) }
            packed.accumulate(x, rows: rows, into: y)
            return
        }
        weight.withUnsafeBufferPointer { w in
            BLAS.rowsTimesTransposed(x, w.baseAddress!, y, rows: rows, n: outFeatures, k: inFeatures, beta: beta)
        }
    }

    public func apply(_ x: Matrix) -> Matrix {
        precondition(x.cols == inFeatures, "Linear: input has \(x.cols) columns, expected \(inFeatures)")
        var y = Matrix(rows: x.rows, cols: outFeatures)
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in apply(xp.baseAddress!, rows: x.rows, into: yp.baseAddress!) }
        }
        return y
    }
}

/// Layer normalization over the last dimension (rows of a matrix).
public struct LayerNorm: Sendable {
    public let gamma: [Float]
    public let beta: [Float]
    public let eps: Float

    public init(_ store: WeightStore, _ prefix: String, dim: Int, eps: Float) throws {
        gamma = try store.take(prefix + ".weight", [dim])
        beta = try store.take(prefix + ".bias", [dim])
        self.eps = eps
    }

    /// Normalizes each of `rows` rows of `dim` values from `x` into `y` (may alias).
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        let d = gamma.count
        gamma.withUnsafeBufferPointer { g in
            beta.withUnsafeBufferPointer { b in
                for r in 0..<rows {
                    let xr = x + r * d, yr = y + r * d
                    var mean: Float = 0
                    for j in 0..<d { mean += xr[j] }
                    mean /= Float(d)
                    var variance: Float = 0
                    for j in 0..<d { let c = xr[j] - mean; variance += c * c }
                    let inv = 1 / (variance / Float(d) + eps).squareRoot()
                    for j in 0..<d { yr[j] = (xr[j] - mean) * inv * g[j] + b[j] }
                }
            }
        }
    }
}

/// Depthwise 1-D convolution over time, "same" zero padding: for a `T × d` input,
/// `y[t][c] = b[c] + Σ_k w[c][k]·x[t + k − K/2][c]`.
public struct DepthwiseConv1d: Sendable {
    public let channels: Int
    public let kernel: Int
    /// Weights transposed to `K × d`, so each tap is a contiguous vector over channels.
    private let taps: [Float]
    private let bias: [Float]

    public init(_ store: WeightStore, _ prefix: String, channels: Int, kernel: Int) throws {
        let w = try store.take(prefix + ".weight", [channels, 1, kernel])
        var t = [Float](repeating: 0, count: kernel * channels)
        for c in 0..<channels { for k in 0..<kernel { t[k * channels + c] = w[c * kernel + k] } }
        taps = t
        bias = try store.take(prefix + ".bias", [channels])
        self.channels = channels
        self.kernel = kernel
    }

    /// `x` and `y` are `frames × channels`; they must not alias.
    public func apply(_ x: UnsafePointer<Float>, frames: Int, into y: UnsafeMutablePointer<Float>) {
        let d = channels, pad = kernel / 2
        taps.withUnsafeBufferPointer { w in
            bias.withUnsafeBufferPointer { b in
                for t in 0..<frames {
                    let yr = y + t * d
                    yr.update(from: b.baseAddress!, count: d)
                    let kFrom = max(0, pad - t), kTo = min(kernel, frames + pad - t)
                    for k in kFrom..<kTo {
                        let xr = x + (t + k - pad) * d
                        let wk = w.baseAddress! + k * d
                        for c in 0..<d { yr[c] += wk[c] * xr[c] }
                    }
                }
            }
        }
    }
}

/// A full 1-D convolution over time, PyTorch's `nn.Conv1d` on a `frames × channels`
/// (time-major) input: `y[t][o] = b[o] + Σ_k Σ_c w[o][c][k]·x[t·stride + k − padding][c]`,
/// zero outside the input. Computed as im2col + one GEMM.
public struct Conv1d: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    /// Weights reordered to `out × (kernel·in)`, tap-major, the column order of the im2col rows.
    private let weight: [Float]
    private let bias: [Float]

    public init(_ store: WeightStore, _ prefix: String, in inChannels: Int, out outChannels: Int,
                kernel: Int, stride: Int = 1, padding: Int = 0) throws {
        let w = try store.take(prefix + ".weight", [outChannels, inChannels, kernel])
        var r = [Float](repeating: 0, count: w.count)
        for o in 0..<outChannels {
            for c in 0..<inChannels {
                for k in 0..<kernel { r[(o * kernel + k) * inChannels + c] = w[(o * inChannels + c) * kernel + k] }
            }
        }
        weight = r
        bias = try store.take(prefix + ".bias", [outChannels])
        (self.inChannels, self.outChannels, self.kernel, self.stride, self.padding) =
            (inChannels, outChannels, kernel, stride, padding)
    }

    /// Output frames for `frames` input frames.
    public func outputFrames(_ frames: Int) -> Int {
        max(0, (frames + 2 * padding - kernel) / stride + 1)
    }

    public func apply(_ x: Matrix) -> Matrix {
        precondition(x.cols == inChannels, "Conv1d: input has \(x.cols) channels, expected \(inChannels)")
        let frames = outputFrames(x.rows), width = kernel * inChannels
        var columns = [Float](repeating: 0, count: frames * width)
        x.data.withUnsafeBufferPointer { xp in
            columns.withUnsafeMutableBufferPointer { cp in
                for t in 0..<frames {
                    for k in 0..<kernel {
                        let source = t * stride + k - padding
                        guard source >= 0 && source < x.rows else { continue }
                        (cp.baseAddress! + t * width + k * inChannels)
                            .update(from: xp.baseAddress! + source * inChannels, count: inChannels)
                    }
                }
            }
        }
        var y = Matrix(rows: frames, cols: outChannels)
        y.data.withUnsafeMutableBufferPointer { yp in
            bias.withUnsafeBufferPointer { b in
                for t in 0..<frames { (yp.baseAddress! + t * outChannels).update(from: b.baseAddress!, count: outChannels) }
            }
            columns.withUnsafeBufferPointer { cp in
                weight.withUnsafeBufferPointer { w in
                    BLAS.gemm(cp.baseAddress!, w.baseAddress!, yp.baseAddress!, m: frames, n: outChannels, k: width,
                              transB: true, beta: 1)
                }
            }
        }
        return y
    }
}

/// A single-layer LSTM cell with PyTorch's gate order (input, forget, cell, output),
/// run for a batch of rows at once: one GEMM per step for the whole beam.
public struct LSTMCell: Sendable {
    public let inputSize: Int
    public let hiddenSize: Int
    /// `[W_ih | W_hh]`, `4h × (in + h)`, so the step is one product with `[x | h]`.
    private let weight: [Float]
    /// `b_ih + b_hh`.
    private let bias: [Float]
    /// Set by `forFewRows()`: `weight` laid out for the few rows of a beam step.
    private var packed: PackedWeights?

    public init(_ store: WeightStore, _ prefix: String, input: Int, hidden: Int) throws {
        let wih = try store.take(prefix + ".weight_ih", [4 * hidden, input])
        let whh = try store.take(prefix + ".weight_hh", [4 * hidden, hidden])
        let bih = try store.take(prefix + ".bias_ih", [4 * hidden])
        let bhh = try store.take(prefix + ".bias_hh", [4 * hidden])
        var w = [Float](repeating: 0, count: 4 * hidden * (input + hidden))
        for r in 0..<(4 * hidden) {
            for j in 0..<input { w[r * (input + hidden) + j] = wih[r * input + j] }
            for j in 0..<hidden { w[r * (input + hidden) + input + j] = whh[r * hidden + j] }
        }
        self.init(weight: w, bias: zip(bih, bhh).map(+), input: input, hidden: hidden)
    }

    private init(weight: [Float], bias: [Float], input: Int, hidden: Int) {
        self.weight = weight
        self.bias = bias
        inputSize = input
        hiddenSize = hidden
    }

    /// This cell with its weights also packed for steps of at most `PackedWeights.maxRows`
    /// rows, where the build prefers that (as `Linear.forFewRows`).
    public func forFewRows(_ enabled: Bool = PackedWeights.preferred) -> LSTMCell {
        guard enabled else { return self }
        var copy = self
        copy.packed = weight.withUnsafeBufferPointer {
            PackedWeights($0.baseAddress!, outputs: 4 * hiddenSize, inputs: inputSize + hiddenSize)
        }
        return copy
    }

    /// Folds the first `count` inputs, which always come from a lookup table
    /// (`rows × count`, e.g. token embeddings), into a table of gate pre-activations
    /// `rows × 4h` (bias included). Returns that table and the cell for the remaining
    /// inputs; a step then starts from a table row instead of multiplying the
    /// embedding again (exact, and a quarter less GEMM for the lasr decoder).
    public func folding(firstInputs count: Int, table: [Float], rows: Int) -> (table: [Float], cell: LSTMCell) {
        (gates(firstInputs: count, table: table, rows: rows), dropping(firstInputs: count))
    }

    /// The gate pre-activations `b + W[:, :count]·x` of each row `x` of `table`
    /// (`rows × count`): `rows × 4h`.
    public func gates(firstInputs count: Int, table: [Float], rows: Int) -> [Float] {
        precondition(count <= inputSize && table.count == rows * count)
        let h = hiddenSize, width = inputSize + h
        var pre = [Float](repeating: 0, count: rows * 4 * h)
        for r in 0..<rows { for g in 0..<(4 * h) { pre[r * 4 * h + g] = bias[g] } }
        guard rows > 0, count > 0 else { return pre }
        table.withUnsafeBufferPointer { t in
            weight.withUnsafeBufferPointer { w in
                pre.withUnsafeMutableBufferPointer { p in
                    BLAS.gemm(t.baseAddress!, w.baseAddress!, p.baseAddress!, m: rows, n: 4 * h, k: count,
                              transB: true, beta: 1, ldb: width)
                }
            }
        }
        return pre
    }

    /// The cell over the inputs after the first `count`, with no bias (the caller adds
    /// the gates of the first inputs, bias included: `gates(firstInputs:…)`).
    public func dropping(firstInputs count: Int) -> LSTMCell {
        let h = hiddenSize, width = inputSize + h, rest = inputSize - count
        var remaining = [Float](repeating: 0, count: 4 * h * (rest + h))
        for g in 0..<(4 * h) {
            for j in 0..<(rest + h) { remaining[g * (rest + h) + j] = weight[g * width + count + j] }
        }
        return LSTMCell(weight: remaining, bias: [Float](repeating: 0, count: 4 * h), input: rest, hidden: h)
    }

    /// One step for `rows` sequences. `xh` is `rows × (in + h)` holding `[x | h_prev]`;
    /// `cell` (`rows × h`) is updated in place and the new hidden state goes to `hidden`.
    /// `gates` (`rows × 4h`) must hold the gates' starting values (the bias, or rows of
    /// a folded table) and is overwritten.
    public func step(xh: UnsafePointer<Float>, rows: Int, cell: UnsafeMutablePointer<Float>,
                     hidden: UnsafeMutablePointer<Float>, gates: UnsafeMutablePointer<Float>) {
        let h = hiddenSize
        if let packed, rows <= PackedWeights.maxRows {
            packed.accumulate(xh, rows: rows, into: gates)
        } else {
            weight.withUnsafeBufferPointer { w in
                BLAS.rowsTimesTransposed(xh, w.baseAddress!, gates, rows: rows, n: 4 * h, k: inputSize + h, beta: 1)
            }
        }
        for r in 0..<rows {
            let g = gates + r * 4 * h
            Activations.sigmoid(g, count: 2 * h)            // input, forget
            Activations.tanh(g + 2 * h, count: h)           // cell candidate
            Activations.sigmoid(g + 3 * h, count: h)        // output
            let c = cell + r * h, s = hidden + r * h
            for j in 0..<h { c[j] = g[h + j] * c[j] + g[j] * g[2 * h + j] }
            s.update(from: c, count: h)
            Activations.tanh(s, count: h)
            for j in 0..<h { s[j] *= g[3 * h + j] }
        }
    }

    /// Fills `gates` (`rows × 4h`) with the bias, for cells that were not folded.
    public func loadBias(into gates: UnsafeMutablePointer<Float>, rows: Int) {
        bias.withUnsafeBufferPointer { b in
            for r in 0..<rows { (gates + r * 4 * hiddenSize).update(from: b.baseAddress!, count: 4 * hiddenSize) }
        }
    }
}
