import CZlib
import Foundation
import LasrCore
import LasrNN

/// A token-level LSTM language model over a native model's vocabulary, for shallow
/// fusion in the beam search (docs/model-format.md, "Language model"):
///
///     (h¹_i, c¹_i) = LSTM¹(E[y_{i−1}], (h¹_{i−1}, c¹_{i−1}))
///     (hˡ_i, cˡ_i) = LSTMˡ(hˡ⁻¹_i, (hˡ_{i−1}, cˡ_{i−1}))        for l = 2…L
///     log p_lm(y_i | y_<i) = log_softmax(W·hᴸ_i + b)
///
/// with `y_0 = <sos/eos>` and zero states, as `training/lasr_train/lm.py` trains it. Like
/// the speller, it steps a batch of hypotheses at once, and the embedding's product
/// with the first layer's input weights is folded into a table of gate rows.
public final class LanguageModel: @unchecked Sendable {
    public let config: LMConfig
    public let vocabularySize: Int
    /// `E·W_ih¹ᵀ + b¹`, `V × 4h`: the first layer's gates from the previous token.
    private let embeddingGates: [Float]
    /// The first layer over its own previous state only.
    private let first: LSTMCell
    /// Layers 2…L over `[h of the layer below | own h]`.
    private let upper: [LSTMCell]
    private let output: Linear
    /// The words of the LM's text (the `lm.lexicon` file), for the search's word check.
    public let lexicon: Lexicon?

    /// Reads `store` (the tensors `lm.embed.weight`, `lm.lstm{l}.*`, `lm.out.*`); `lexicon`
    /// is the word list of the `lm.lexicon` file, for the search's word check.
    public init(_ store: WeightStore, config: LMConfig, vocabularySize: Int, lexicon: Lexicon? = nil) throws {
        self.config = config
        self.lexicon = lexicon
        self.vocabularySize = vocabularySize
        let e = config.embedDim, h = config.hidden
        let embedding = try store.take("lm.embed.weight", [vocabularySize, e])
        let cell = try LSTMCell(store, "lm.lstm0", input: e, hidden: h)
        let folded = cell.folding(firstInputs: e, table: embedding, rows: vocabularySize)
        embeddingGates = folded.table
        first = folded.cell.forFewRows()
        upper = try (1..<config.layers).map { try LSTMCell(store, "lm.lstm\($0)", input: h, hidden: h).forFewRows() }
        output = try Linear(store, "lm.out", in: h, out: vocabularySize).forFewRows()
    }

    /// The model's LM, from `lm.safetensors` (or the file the config names) in `directory`,
    /// checked against the vocabulary it must share with the acoustic model.
    public convenience init(directory: URL, config: LMConfig, vocabularyFile: URL, vocabularySize: Int) throws {
        let tokens = try Data(contentsOf: vocabularyFile)
        let crc = tokens.withUnsafeBytes { UInt32(crc32(0, $0.bindMemory(to: UInt8.self).baseAddress, uInt($0.count))) }
        let path = directory.appendingPathComponent(config.file).path
        guard crc == config.vocabularyCRC32 else {
            throw LasrError(.invalidModel, path: path, String(
                format: "the language model was trained on another vocabulary (tokens.txt CRC-32 %08x, the model's is %08x); retrain it with make train-lm, or decode with --no-lm",
                config.vocabularyCRC32, crc))
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw LasrError(.invalidModel, path: path, "config.yaml has an lm: section but its weights file is missing")
        }
        let lexicon = try config.lexicon.map { try Lexicon(path: directory.appendingPathComponent($0).path) }
        let store = WeightStore(file: try SafeTensorsFile(path: path))
        try self.init(store, config: config, vocabularySize: vocabularySize, lexicon: lexicon)
        try store.finish()
    }

    /// The recurrent state of `rows` hypotheses per layer, and scratch buffers reused by every step.
    public final class State {
        public private(set) var rows: Int
        var hidden: [[Float]]   // per layer, rows × h
        var cell: [[Float]]
        var xh: [Float] = []
        var gates: [Float] = []

        init(rows: Int, layers: Int, hidden h: Int) {
            self.rows = rows
            hidden = [[Float]](repeating: [Float](repeating: 0, count: rows * h), count: layers)
            cell = hidden
        }

        /// Keeps the rows `parents` (in that order, repeats allowed): the beam's survivors.
        public func select(_ parents: [Int]) {
            func gather(_ a: [Float]) -> [Float] {
                let width = a.count / max(rows, 1)
                var out = [Float](repeating: 0, count: parents.count * width)
                for (i, p) in parents.enumerated() { out[(i * width)..<((i + 1) * width)] = a[(p * width)..<((p + 1) * width)] }
                return out
            }
            hidden = hidden.map(gather)
            cell = cell.map(gather)
            rows = parents.count
        }
    }

    public func initialState(rows: Int = 1) -> State {
        State(rows: rows, layers: config.layers, hidden: config.hidden)
    }

    /// One step for every row of `state`: `previous[r]` is row r's last token
    /// (`<sos/eos>` at the start). Writes log-probabilities (`rows × V`) into `logProbs`.
    public func step(previous: [Int], state: State, logProbs: inout [Float]) {
        let rows = state.rows, h = config.hidden, v = vocabularySize
        precondition(previous.count == rows)
        if state.gates.count < rows * 4 * h { state.gates = [Float](repeating: 0, count: rows * 4 * h) }
        if state.xh.count < rows * 2 * h { state.xh = [Float](repeating: 0, count: rows * 2 * h) }
        if logProbs.count != rows * v { logProbs = [Float](repeating: 0, count: rows * v) }
        state.gates.withUnsafeMutableBufferPointer { gates in
            embeddingGates.withUnsafeBufferPointer { table in
                for r in 0..<rows {
                    (gates.baseAddress! + r * 4 * h).update(from: table.baseAddress! + previous[r] * 4 * h, count: 4 * h)
                }
            }
            // The folded first layer reads only its previous hidden state, which step()
            // overwrites, so the input is copied out first.
            state.xh.withUnsafeMutableBufferPointer { xh in
                state.hidden[0].withUnsafeBufferPointer { xh.baseAddress!.update(from: $0.baseAddress!, count: rows * h) }
                state.cell[0].withUnsafeMutableBufferPointer { c in
                    state.hidden[0].withUnsafeMutableBufferPointer { s in
                        first.step(xh: xh.baseAddress!, rows: rows, cell: c.baseAddress!, hidden: s.baseAddress!,
                                   gates: gates.baseAddress!)
                    }
                }
            }
            for (k, layer) in upper.enumerated() {
                let l = k + 1
                state.xh.withUnsafeMutableBufferPointer { xh in
                    for r in 0..<rows {
                        let row = xh.baseAddress! + r * 2 * h
                        state.hidden[l - 1].withUnsafeBufferPointer { row.update(from: $0.baseAddress! + r * h, count: h) }
                        state.hidden[l].withUnsafeBufferPointer { (row + h).update(from: $0.baseAddress! + r * h, count: h) }
                    }
                    layer.loadBias(into: gates.baseAddress!, rows: rows)
                    state.cell[l].withUnsafeMutableBufferPointer { c in
                        state.hidden[l].withUnsafeMutableBufferPointer { s in
                            layer.step(xh: xh.baseAddress!, rows: rows, cell: c.baseAddress!, hidden: s.baseAddress!,
                                       gates: gates.baseAddress!)
                        }
                    }
                }
            }
        }
        state.hidden[config.layers - 1].withUnsafeBufferPointer { top in
            logProbs.withUnsafeMutableBufferPointer { lp in
                output.apply(top.baseAddress!, rows: rows, into: lp.baseAddress!)
                for r in 0..<rows { Activations.logSoftmax(lp.baseAddress! + r * v, count: v) }
            }
        }
    }

    /// Log-probabilities of each next token after each prefix of `tokens` (which starts
    /// with `<sos/eos>`): `tokens.count` rows of V, one sequence stepped alone.
    public func logProbabilities(after tokens: [Int]) -> [[Float]] {
        let state = initialState()
        var lp: [Float] = []
        return tokens.map { token in
            step(previous: [token], state: state, logProbs: &lp)
            return lp
        }
    }
}
