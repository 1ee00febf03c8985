import LasrCore
import LasrNN

/// The listen-attend-spell decoder (docs/model-format.md, "Decoder"), stepped for a
/// batch of hypotheses at once:
///
///     (s_i, cell_i) = LSTM([E[y_{i−1}] ; c_{i−1}], (s_{i−1}, cell_{i−1}))
///     α_i = Attention(s_i, H, α_{i−1});   c_i = α_i·H
///     log p(y_i | …) = log_softmax(W_out·[s_i ; c_i] + b_out)
///
/// with `y_0 = <sos/eos>`, `c_0 = s_0 = cell_0 = 0` and `α_0` uniform over the frames.
public final class SpellerDecoder {
    public let embedDim: Int
    public let hidden: Int
    public let valueDim: Int
    public let vocabularySize: Int
    /// `E·W_ih[:, :e]ᵀ + b`, `V × 4h`: the embedding's share of the LSTM gates, per token.
    private let embeddingGates: [Float]
    /// The LSTM over the remaining inputs `[c_{i−1} | s_{i−1}]`.
    private let lstm: LSTMCell
    public let attention: Attention
    private let output: Linear
    /// The internal LM's LSTM and output layer: the speller's without their context
    /// inputs, whose share the internal LM folds once per utterance (its context is fixed).
    private let internalLSTM: LSTMCell
    private let internalOutput: Linear

    public init(_ store: WeightStore, config: DecoderConfig, valueDim: Int, vocabularySize: Int) throws {
        embedDim = config.embedDim
        hidden = config.hidden
        self.valueDim = valueDim
        self.vocabularySize = vocabularySize
        let embedding = try store.take("decoder.embed.weight", [vocabularySize, config.embedDim])
        let fullCell = try LSTMCell(store, "decoder.lstm", input: config.embedDim + valueDim, hidden: config.hidden)
        let folded = fullCell.folding(firstInputs: config.embedDim, table: embedding, rows: vocabularySize)
        embeddingGates = folded.table
        lstm = folded.cell.forFewRows()
        attention = try Attention(store, "decoder.attention", config: config.attention,
                                  queryDim: config.hidden, valueDim: valueDim)
        output = try Linear(store, "decoder.out", in: config.hidden + valueDim, out: vocabularySize).forFewRows()
        internalLSTM = folded.cell.dropping(firstInputs: valueDim).forFewRows()
        let h = config.hidden, width = h + valueDim
        var hiddenOut = [Float](repeating: 0, count: vocabularySize * h)
        for k in 0..<vocabularySize {
            hiddenOut[(k * h)..<((k + 1) * h)] = output.weight[(k * width)..<(k * width + h)]
        }
        internalOutput = Linear(inFeatures: h, outFeatures: vocabularySize, weight: hiddenOut, bias: nil).forFewRows()
    }

    /// What the decoder knows about one utterance: its encoder output and keys.
    public struct Memory {
        public let encoder: Matrix
        public let keys: Matrix
        public var frames: Int { encoder.rows }
    }

    public func memory(for encoder: Matrix) -> Memory {
        Memory(encoder: encoder, keys: attention.keys(for: encoder))
    }

    /// The recurrent state of `rows` hypotheses, row-major, plus scratch buffers
    /// allocated once per utterance.
    public final class State {
        public private(set) var rows: Int
        let frames: Int
        var context: [Float]   // rows × d
        var hidden: [Float]    // rows × h
        var cell: [Float]      // rows × h
        /// Attention weights of the last step, `rows × T′`.
        public internal(set) var alpha: [Float]
        /// The weights of the step before, kept in a second buffer (swapped each step) so a
        /// step allocates only when the number of hypotheses changes.
        var previousAlpha: [Float] = []
        /// The internal LM's shares of its fixed context `c̄` (`internalLMState`): in the
        /// LSTM's gates (`W_ih`'s context columns·c̄) and in the logits (`W_out`'s context
        /// columns·c̄ + b_out). Nil for the attending decoder.
        var fixedGates: [Float]?
        var fixedLogits: [Float] = []
        /// Steps taken; the first attends over all frames whatever the window.
        var steps = 0
        var xh: [Float] = []
        var gates: [Float] = []
        var sc: [Float] = []
        let workspace = Attention.Workspace()

        init(rows: Int, frames: Int, valueDim: Int, hidden h: Int) {
            self.rows = rows
            self.frames = frames
            context = [Float](repeating: 0, count: rows * valueDim)
            hidden = [Float](repeating: 0, count: rows * h)
            cell = [Float](repeating: 0, count: rows * h)
            alpha = [Float](repeating: 1 / Float(max(frames, 1)), count: rows * frames)
        }

        /// Keeps the rows `parents` (in that order, repeats allowed): the beam's survivors.
        public func select(_ parents: [Int]) {
            func gather(_ a: [Float], _ width: Int) -> [Float] {
                var out = [Float](repeating: 0, count: parents.count * width)
                for (i, p) in parents.enumerated() {
                    out[(i * width)..<((i + 1) * width)] = a[(p * width)..<((p + 1) * width)]
                }
                return out
            }
            context = gather(context, context.count / rows)
            hidden = gather(hidden, hidden.count / rows)
            cell = gather(cell, cell.count / rows)
            alpha = gather(alpha, frames)
            rows = parents.count
        }

        /// The attention row of hypothesis `row`.
        public func alignment(row: Int) -> ArraySlice<Float> { alpha[(row * frames)..<((row + 1) * frames)] }
    }

    public func initialState(memory: Memory, rows: Int = 1) -> State {
        State(rows: rows, frames: memory.frames, valueDim: valueDim, hidden: hidden)
    }

    /// One decoder step for every row of `state`: `previous[r]` is row r's last token.
    /// Writes log-probabilities (`rows × V`) into `logProbs`. With a `window`, each row
    /// attends only to the frames around its previous attention peak (see `AttentionWindow`).
    public func step(previous: [Int], state: State, memory: Memory, logProbs: inout [Float],
                     window: AttentionWindow? = nil) {
        let rows = state.rows, d = valueDim
        advance(previous: previous, state: state)
        swap(&state.alpha, &state.previousAlpha)
        if state.alpha.count != state.previousAlpha.count {
            state.alpha = [Float](repeating: 0, count: state.previousAlpha.count)
        }
        let frames = memory.frames
        let ranges: [Range<Int>] = (0..<rows).map { r in
            guard let window, state.steps > 0 else { return 0..<frames }
            return state.previousAlpha.withUnsafeBufferPointer { window.range(around: $0.baseAddress! + r * frames, frames: frames) }
        }
        state.hidden.withUnsafeBufferPointer { s in
            state.previousAlpha.withUnsafeBufferPointer { prev in
                state.alpha.withUnsafeMutableBufferPointer { alpha in
                    attention.weights(states: s.baseAddress!, rows: rows, keys: memory.keys, previous: prev.baseAddress!,
                                      into: alpha.baseAddress!, ranges: ranges, workspace: state.workspace)
                }
            }
        }
        state.steps += 1
        // c_i = α_i·H. With a window, each row's weights are 0 outside its range: one
        // product per row over the range reads a third of H, where sgemm would copy all
        // of H into its packed layout on every step.
        state.alpha.withUnsafeBufferPointer { alpha in
            memory.encoder.data.withUnsafeBufferPointer { enc in
                state.context.withUnsafeMutableBufferPointer { ctx in
                    if ranges.contains(where: { $0.count < frames }) {
                        for r in 0..<rows {
                            let range = ranges[r]
                            guard !range.isEmpty else { (ctx.baseAddress! + r * d).update(repeating: 0, count: d); continue }
                            BLAS.gemv(enc.baseAddress! + range.lowerBound * d, alpha.baseAddress! + r * frames + range.lowerBound,
                                      ctx.baseAddress! + r * d, m: range.count, n: d, lda: d, transA: true)
                        }
                    } else {
                        BLAS.gemm(alpha.baseAddress!, enc.baseAddress!, ctx.baseAddress!, m: rows, n: d, k: frames)
                    }
                }
            }
        }
        emit(state: state, logProbs: &logProbs)
    }

    /// The state of the decoder's internal language model for one utterance: the speller
    /// with every attention output replaced by `c̄`, the mean of the encoder frames (the
    /// context of uniform attention), and `c_0 = 0` as the decoder starts. Its
    /// `step(previous:internalLM:…)` estimates the prior over token sequences that the
    /// decoder learned from its transcripts, which fusion can discount (the "sequence
    /// average" context of Zeineldeen et al. 2021, "Investigating methods to improve language
    /// model integration for attention-based encoder-decoder ASR models"; Meng et al. 2021
    /// used a zero context, which read level on this decoder: training/README.md).
    public func internalLMState(memory: Memory, rows: Int = 1) -> State {
        // valueDim 0: the state carries no context rows, only the LSTM's.
        let state = State(rows: rows, frames: 0, valueDim: 0, hidden: hidden)
        let d = valueDim, h = hidden, frames = memory.frames
        var mean = [Float](repeating: 0, count: d)
        memory.encoder.data.withUnsafeBufferPointer { enc in
            for t in 0..<frames { for j in 0..<d { mean[j] += enc[t * d + j] } }
        }
        let scale = 1 / Float(max(frames, 1))
        for j in 0..<d { mean[j] *= scale }
        state.fixedGates = lstm.gates(firstInputs: d, table: mean, rows: 1)
        var logits = output.bias ?? [Float](repeating: 0, count: vocabularySize)
        output.weight.withUnsafeBufferPointer { w in
            BLAS.gemv(w.baseAddress! + h, mean, &logits, m: vocabularySize, n: d, lda: h + d, beta: 1)
        }
        state.fixedLogits = logits
        return state
    }

    /// One step of the internal language model (`internalLMState`) for every row of `state`:
    /// the LSTM and the output layer with `c̄` in place of attention, its shares folded.
    public func step(previous: [Int], internalLM state: State, logProbs: inout [Float]) {
        guard let fixedGates = state.fixedGates else { preconditionFailure("not an internal-LM state") }
        let rows = state.rows, h = hidden, v = vocabularySize
        precondition(previous.count == rows)
        if state.xh.count < rows * h { state.xh = [Float](repeating: 0, count: rows * h) }
        if state.gates.count < rows * 4 * h { state.gates = [Float](repeating: 0, count: rows * 4 * h) }
        if logProbs.count != rows * v { logProbs = [Float](repeating: 0, count: rows * v) }
        let first = state.steps == 0   // c_0 = 0: no context share in the first step's gates
        state.xh.withUnsafeMutableBufferPointer { xh in
            state.gates.withUnsafeMutableBufferPointer { gates in
                state.hidden.withUnsafeBufferPointer { hid in
                    embeddingGates.withUnsafeBufferPointer { table in
                        fixedGates.withUnsafeBufferPointer { fixed in
                            for r in 0..<rows {
                                (xh.baseAddress! + r * h).update(from: hid.baseAddress! + r * h, count: h)
                                let g = gates.baseAddress! + r * 4 * h
                                g.update(from: table.baseAddress! + previous[r] * 4 * h, count: 4 * h)
                                if !first { for j in 0..<(4 * h) { g[j] += fixed[j] } }
                            }
                        }
                    }
                }
            }
        }
        stepLSTM(internalLSTM, state: state)
        state.steps += 1
        state.hidden.withUnsafeBufferPointer { s in
            state.fixedLogits.withUnsafeBufferPointer { fixed in
                logProbs.withUnsafeMutableBufferPointer { lp in
                    for r in 0..<rows { (lp.baseAddress! + r * v).update(from: fixed.baseAddress!, count: v) }
                    internalOutput.apply(s.baseAddress!, rows: rows, into: lp.baseAddress!, accumulate: true)
                    for r in 0..<rows { Activations.logSoftmax(lp.baseAddress! + r * v, count: v) }
                }
            }
        }
    }

    /// The LSTM step: `(s_i, cell_i)` from `[E[y_{i−1}] ; c_{i−1}]` and `s_{i−1}`.
    private func advance(previous: [Int], state: State) {
        let rows = state.rows, d = valueDim, h = hidden
        precondition(previous.count == rows)
        let width = d + h
        if state.xh.count < rows * width { state.xh = [Float](repeating: 0, count: rows * width) }
        if state.gates.count < rows * 4 * h { state.gates = [Float](repeating: 0, count: rows * 4 * h) }
        // Row copies through pointers: element-wise stores into the arrays would check
        // their uniqueness on every element.
        state.xh.withUnsafeMutableBufferPointer { xh in
            state.gates.withUnsafeMutableBufferPointer { gates in
                state.context.withUnsafeBufferPointer { ctx in
                    state.hidden.withUnsafeBufferPointer { hid in
                        embeddingGates.withUnsafeBufferPointer { table in
                            for r in 0..<rows {
                                let row = xh.baseAddress! + r * width
                                row.update(from: ctx.baseAddress! + r * d, count: d)
                                (row + d).update(from: hid.baseAddress! + r * h, count: h)
                                (gates.baseAddress! + r * 4 * h).update(from: table.baseAddress! + previous[r] * 4 * h, count: 4 * h)
                            }
                        }
                    }
                }
            }
        }
        stepLSTM(lstm, state: state)
    }

    /// `cell` stepped on the inputs `state.xh` holds, from the gates `state.gates` holds.
    private func stepLSTM(_ cell: LSTMCell, state: State) {
        state.xh.withUnsafeBufferPointer { xh in
            state.cell.withUnsafeMutableBufferPointer { c in
                state.hidden.withUnsafeMutableBufferPointer { s in
                    state.gates.withUnsafeMutableBufferPointer { g in
                        cell.step(xh: xh.baseAddress!, rows: state.rows, cell: c.baseAddress!, hidden: s.baseAddress!,
                                  gates: g.baseAddress!)
                    }
                }
            }
        }
    }

    /// `log_softmax(W_out·[s_i ; c_i] + b_out)` for every row.
    private func emit(state: State, logProbs: inout [Float]) {
        let rows = state.rows, d = valueDim, h = hidden, v = vocabularySize
        if state.sc.count < rows * (h + d) { state.sc = [Float](repeating: 0, count: rows * (h + d)) }
        if logProbs.count != rows * v { logProbs = [Float](repeating: 0, count: rows * v) }
        state.sc.withUnsafeMutableBufferPointer { sc in
            state.hidden.withUnsafeBufferPointer { hid in
                state.context.withUnsafeBufferPointer { ctx in
                    for r in 0..<rows {
                        let row = sc.baseAddress! + r * (h + d)
                        row.update(from: hid.baseAddress! + r * h, count: h)
                        (row + h).update(from: ctx.baseAddress! + r * d, count: d)
                    }
                }
            }
        }
        state.sc.withUnsafeBufferPointer { sc in
            logProbs.withUnsafeMutableBufferPointer { lp in
                output.apply(sc.baseAddress!, rows: rows, into: lp.baseAddress!)
                for r in 0..<rows { Activations.logSoftmax(lp.baseAddress! + r * v, count: v) }
            }
        }
    }
}

/// Windowed attention at decoding time: each step scores only the frames from
/// `back` before to `forward` after the previous step's attention peak; the others get
/// weight 0. Chorowski et al. (2015, section 2.3) decode long utterances the same way.
/// The cost of an attention step then no longer grows with the segment length, and a
/// decoder cannot suddenly re-read audio far behind it.
public struct AttentionWindow: Sendable, Equatable {
    public var back: Int
    public var forward: Int

    public init(back: Int, forward: Int) {
        self.back = back
        self.forward = forward
    }

    /// Frames to score for weights `alpha` (`frames` values) of the previous step.
    public func range(around alpha: UnsafePointer<Float>, frames: Int) -> Range<Int> {
        var peak = 0
        for j in 1..<max(frames, 1) where alpha[j] > alpha[peak] { peak = j }
        return max(0, peak - back)..<min(frames, peak + forward + 1)
    }
}
