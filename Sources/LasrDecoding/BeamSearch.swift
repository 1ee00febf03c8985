import Foundation
import LasrCore
import LasrModel

/// Settings of one decoding run; defaults come from the model's `decoding` section.
public struct DecodingOptions: Sendable, Equatable {
    /// Hypotheses kept per step; 1 is greedy decoding.
    public var beam: Int
    /// Weight of the CTC prefix score in `(1−w)·log p_att + w·log p_ctc`; 0 turns it off.
    public var ctcWeight: Double
    /// Rank ended hypotheses by score per token (tokens + end) instead of total score.
    public var lengthNormalization: Bool
    /// At most `⌊ratio·T′⌋` tokens for `T′` encoder frames.
    public var maxLenRatio: Double
    /// `<sos/eos>` may end a hypothesis only when `log p(eos) ≥ threshold · max_c log p(c)`.
    public var eosThreshold: Double
    /// Attention-shift limit: a hypothesis whose attention peak moves back by more than
    /// this many encoder frames in one step is dropped (an attention decoder that loops
    /// re-reads audio it has already spelled). nil turns the guard off.
    public var maxBacktrackFrames: Int?
    /// Frames scored around the previous attention peak; nil scores every frame.
    public var attentionWindow: AttentionWindow?
    /// Shallow-fusion weight β of the model's language model: each candidate gains
    /// `β · log p_lm`. 0 (or a model without an LM) decodes without it, exactly as before.
    public var lmWeight: Double = 0
    /// γ added per token, which offsets the bias toward short hypotheses that fusion adds.
    public var lengthBonus: Double = 0
    /// Ranking while an LM is fused (`lmWeight` > 0 on a model with one): by score per token
    /// when true, else by total score, where γ counts once per token and can balance the
    /// LM's preference for ending. Without fusion the search ranks by `lengthNormalization`.
    public var fusionLengthNormalization = false
    /// While fusing, the penalty δ ≥ 0 a hypothesis pays where its spelling leaves every word
    /// of the LM's lexicon (`LanguageModel.lexicon`); 0, or an LM without one, checks no words.
    public var lexiconPenalty: Double = 0
    /// While fusing, the weight μ ≥ 0 of the internal-LM discount: each candidate also gains
    /// `−μ·log p_ilm`, the decoder's own prior over tokens (`SpellerDecoder.internalLMState`),
    /// so that the external LM replaces that prior rather than adding to it. 0 turns it off.
    public var internalLMWeight: Double = 0

    /// The window lasr decodes with unless told otherwise: 0.8 s back, 2.4 s ahead
    /// (20 and 60 frames of 40 ms).
    public static let defaultWindow = AttentionWindow(back: 20, forward: 60)

    public init(beam: Int, ctcWeight: Double, lengthNormalization: Bool, maxLenRatio: Double,
                eosThreshold: Double, maxBacktrackFrames: Int? = 8,
                attentionWindow: AttentionWindow? = DecodingOptions.defaultWindow) {
        self.beam = beam
        self.ctcWeight = ctcWeight
        self.lengthNormalization = lengthNormalization
        self.maxLenRatio = maxLenRatio
        self.eosThreshold = eosThreshold
        self.maxBacktrackFrames = maxBacktrackFrames
        self.attentionWindow = attentionWindow
    }

    /// The model's defaults: its `decoding` section, and its `lm` section's β and γ.
    public init(_ config: DecodingConfig, lm: LMConfig? = nil) {
        self.init(beam: config.beam, ctcWeight: config.ctcWeight, lengthNormalization: config.lengthNormalization,
                  maxLenRatio: config.maxLenRatio, eosThreshold: config.eosThreshold)
        lmWeight = lm?.weight ?? 0
        lengthBonus = lm?.lengthBonus ?? 0
        fusionLengthNormalization = lm?.lengthNormalization ?? false
        lexiconPenalty = lm?.lexiconPenalty ?? 0
        internalLMWeight = lm?.internalLMWeight ?? 0
    }

    /// Whether ended hypotheses are ranked by score per token, for a model that has (or
    /// lacks) a language model: fusion has its own rule.
    public func ranksPerToken(fusing: Bool) -> Bool {
        fusing && lmWeight > 0 ? fusionLengthNormalization : lengthNormalization
    }
}

/// A finished hypothesis.
public struct Hypothesis: Sendable {
    /// Token ids, without `<sos/eos>`.
    public var tokens: [Int]
    /// The ranking score (per token when the options say so: `DecodingOptions.ranksPerToken`).
    public var score: Double
    /// Total joint score before normalization.
    public var rawScore: Double
    /// Attention log-probability of each token, then of the end: `tokens.count + 1` values.
    public var tokenLogProbs: [Double]
    /// CTC log-probability of the whole sequence (0 without CTC).
    public var ctcLogProb: Double
    /// The language model's log-probability of the tokens and the end (0 without fusion).
    public var lmLogProb: Double = 0
    /// Attention weights of each step, `(tokens.count + 1) × T′` (the last row is the end step's).
    public var alignment: [[Float]]
}

/// Joint CTC/attention beam search over the listen-attend-spell decoder.
///
/// Each step advances all live hypotheses together (one batched decoder step: one
/// LSTM GEMM and one attention pass for the whole beam). A hypothesis proposes its
/// `⌊1.5·beam⌋` best next tokens (`beam` without CTC); each is scored
/// `score + (1−w)·log p_att(c) + w·(log ψ(g+c) − log ψ(g))`, and the best `beam`
/// candidates survive. With a language model (shallow fusion, `lmWeight` β > 0) each
/// candidate also gains `β·log p_lm(c | g) + γ`, the end `β·log p_lm(<eos> | g)`, and the
/// proposals are the best by `(1−w)·log p_att + β·log p_lm`; the LM's state is carried
/// per hypothesis and stepped for the whole beam at once, like the decoder's; ended
/// hypotheses are then ranked by `fusionLengthNormalization` (total score by default)
/// instead of `lengthNormalization`. With the LM's lexicon and a penalty δ > 0, a candidate
/// also pays `−δ` where its current word's spelling leaves every word of the lexicon, or
/// where it completes a word that is only a prefix of one (the word check,
/// docs/model-format.md). Where `<sos/eos>` passes the threshold (and always at the last
/// step) the hypothesis also ends, scored with the CTC probability of the complete
/// prefix. The search stops at the maximum length, when none is left, or when no
/// running hypothesis ranks above the best ended one.
///
/// That last rule replaced "stop once `beam` hypotheses have ended", which lost the
/// tails of utterances: an uncertain decoder lets several hypotheses end early within a
/// few steps, the count is reached before any complete hypothesis ends, and the short
/// ones win however badly CTC scores them (docs/benchmarks.md has the dev numbers).
/// This is the algorithm of `training/lasr_train/decode.py`'s `beam_search`, which
/// the parity fixture checks it against.
public struct BeamSearch {
    public let model: LasrModel
    public let options: DecodingOptions
    /// Tests turn the early stop off to compare with a search run to the maximum length.
    var stopsEarly = true

    public init(model: LasrModel, options: DecodingOptions) {
        self.model = model
        self.options = options
    }

    private struct Live {
        var tokens: [Int]
        var score: Double
        var tokenLogProbs: [Double]
        var lmLogProb = 0.0
        /// The word being spelled (UTF-8, without `▁`), and whether it already left the lexicon.
        var word: [UInt8] = []
        var offLexicon = false
        var ctc: CTCPrefixScorer.State?
        var alignment: [[Float]]
        var peak: Int?
    }

    /// The n-best list (best first) for one utterance's encoder output.
    public func decode(_ encoded: Matrix, nBest: Int = 1) -> [Hypothesis] {
        let frames = encoded.rows
        guard frames > 0 else { return [] }
        let vocab = model.vocabulary
        let eos = vocab.sosEos, blank = vocab.blank
        let w = model.ctcHead == nil ? 0 : options.ctcWeight
        let scorer: CTCPrefixScorer? = w > 0 ? model.ctcLogProbs(encoded).map { CTCPrefixScorer(logProbs: $0, blank: blank) } : nil
        let memory = model.decoder.memory(for: encoded)
        let state = model.decoder.initialState(memory: memory)
        let maxLen = max(1, Int(options.maxLenRatio * Double(frames)))
        let preBeam = scorer != nil ? Int(1.5 * Double(options.beam)) : options.beam
        var live = [Live(tokens: [], score: 0, tokenLogProbs: [], ctc: scorer?.initial(), alignment: [], peak: nil)]
        var ended: [Hypothesis] = []
        var bestEnded = -Double.infinity
        var logProbs: [Float] = []
        let V = vocab.count
        // Shallow fusion: off (and the search exactly the one without an LM) at β = 0.
        let lm = options.lmWeight > 0 ? model.languageModel : nil
        let normalize = options.ranksPerToken(fusing: lm != nil)
        func rank(_ score: Double, tokens: Int) -> Double { normalize ? score / Double(tokens + 1) : score }
        let beta = lm != nil ? options.lmWeight : 0, gamma = options.lengthBonus
        let lmState = lm?.initialState()
        var lmLogProbs: [Float] = []
        let mu = lm != nil ? options.internalLMWeight : 0
        let ilmState = mu > 0 ? model.decoder.internalLMState(memory: memory) : nil
        var ilmLogProbs: [Float] = []
        var proposal = [Float](repeating: 0, count: lm != nil ? V : 0)
        /// What fusion adds to a candidate of row r: β·log p_lm(token) − μ·log p_ilm(token) + γ.
        func fused(_ r: Int, _ token: Int) -> Double {
            guard lm != nil else { return gamma }
            let ilm = ilmState != nil ? mu * Double(ilmLogProbs[r * V + token]) : 0
            return beta * Double(lmLogProbs[r * V + token]) - ilm + gamma
        }
        func lmLogProb(_ r: Int, _ token: Int) -> Double { lm != nil ? Double(lmLogProbs[r * V + token]) : 0 }
        // The word check: −δ once where a word's spelling leaves the lexicon (so the beam drops
        // it early, not at its end), and −δ at the end of a word that is only a prefix of one.
        let lexicon = lm != nil && options.lexiconPenalty > 0 ? lm?.lexicon : nil
        let delta = options.lexiconPenalty
        let startsWord = lexicon == nil ? [] : (0..<V).map { vocab.isPiece($0) && vocab.startsWord($0) }
        let pieceBytes: [[UInt8]] = lexicon == nil ? [] : vocab.pieces.map {
            Array(($0.first == Vocabulary.wordBoundary ? String($0.dropFirst()) : $0).utf8)
        }
        var spelled: [UInt8] = []
        /// The penalty of extending `hyp` by `token`; `spelled` and the result's flag are its new word state.
        func spell(_ hyp: Live, _ token: Int) -> (penalty: Double, off: Bool) {
            guard let lexicon else { return (0, false) }
            var penalty = 0.0, off = hyp.offLexicon
            spelled.removeAll(keepingCapacity: true)
            if startsWord[token] {
                if !off, !hyp.word.isEmpty, !lexicon.contains(hyp.word) { penalty -= delta }
                off = false
            } else {
                spelled += hyp.word
            }
            if !off {
                spelled += pieceBytes[token]
                if !lexicon.hasPrefix(spelled) { penalty -= delta; off = true }
            }
            return (penalty, off)
        }
        /// The penalty of ending `hyp`: its last word must be a whole word.
        func endPenalty(_ hyp: Live) -> Double {
            guard let lexicon, !hyp.offLexicon, !hyp.word.isEmpty, !lexicon.contains(hyp.word) else { return 0 }
            return -delta
        }

        for step in 0...maxLen {
            let previous = live.map { $0.tokens.last ?? eos }
            model.decoder.step(previous: previous, state: state, memory: memory, logProbs: &logProbs,
                               window: options.attentionWindow)
            if let lm, let lmState { lm.step(previous: previous, state: lmState, logProbs: &lmLogProbs) }
            if let ilmState { model.decoder.step(previous: previous, internalLM: ilmState, logProbs: &ilmLogProbs) }
            struct Candidate { let score: Double; let parent: Int; let token: Int; let logProb: Double; let lmLogProb: Double; let ctc: (extension: Int, index: Int)? }
            // A candidate carries only its word-check penalty; a survivor's word state is spelled
            // again from its parent (a beam's worth a step, not every candidate's).
            var candidates: [Candidate] = []
            var extensions: [CTCPrefixScorer.Extension] = []
            var pending: [(parent: Int, tokens: [Int])] = []  // hypotheses whose candidates need CTC scores
            // Each row's attention and its peak, read once: the candidates of the row and
            // the hypotheses that survive from it share them.
            let rows = live.indices.map { Array(state.alignment(row: $0)) }
            let peaks = rows.map { row in row.indices.max { row[$0] < row[$1] } ?? 0 }
            for (r, hyp) in live.enumerated() {
                let row = rows[r], peak = peaks[r]
                if let limit = options.maxBacktrackFrames, let previous = hyp.peak, previous - peak > limit { continue }
                let base = r * V
                // Best non-special tokens; the best of them also sets the end threshold.
                let order = logProbs.withUnsafeBufferPointer {
                    BeamRanking.topTokens(UnsafeBufferPointer(rebasing: $0[base..<(base + V)]), k: preBeam) {
                        $0 != eos && $0 != blank
                    }
                }
                var top = step == maxLen ? [] : order
                if lm != nil, !top.isEmpty {
                    // Proposals by what fusion will rank them by, so the LM can bring in a
                    // token the acoustics alone would not have proposed.
                    let attWeight = Float(scorer != nil ? 1 - w : 1), lmWeight = Float(beta)
                    for t in 0..<V { proposal[t] = attWeight * logProbs[base + t] + lmWeight * lmLogProbs[base + t] }
                    if ilmState != nil {
                        let ilmWeight = Float(mu)
                        for t in 0..<V { proposal[t] -= ilmWeight * ilmLogProbs[base + t] }
                    }
                    top = BeamRanking.topTokens(proposal, k: preBeam) { $0 != eos && $0 != blank }
                }
                let bestOther = order.first.map { Double(logProbs[base + $0]) } ?? -Double.infinity
                let eosLogProb = Double(logProbs[base + eos])
                if eosLogProb >= options.eosThreshold * bestOther || step == maxLen {
                    var total = hyp.score + eosLogProb
                    var ctcTotal = 0.0
                    if let scorer, let c = hyp.ctc {
                        ctcTotal = scorer.final(c)
                        total = hyp.score + (1 - w) * eosLogProb + w * (ctcTotal - c.logPsi)
                    }
                    let lmEnd = lmLogProb(r, eos)
                    if lm != nil { total += beta * lmEnd + endPenalty(hyp) }
                    if ilmState != nil { total -= mu * Double(ilmLogProbs[r * V + eos]) }
                    let normalized = rank(total, tokens: hyp.tokens.count)
                    bestEnded = max(bestEnded, normalized)
                    var ending = Hypothesis(tokens: hyp.tokens, score: normalized, rawScore: total,
                                            tokenLogProbs: hyp.tokenLogProbs + [eosLogProb], ctcLogProb: ctcTotal,
                                            alignment: hyp.alignment + [row])
                    ending.lmLogProb = hyp.lmLogProb + lmEnd
                    ended.append(ending)
                }
                guard !top.isEmpty else { continue }
                if scorer != nil, hyp.ctc != nil {
                    pending.append((r, top))
                } else {
                    for token in top {
                        let lpc = Double(logProbs[base + token])
                        let score = hyp.score + lpc + fused(r, token) + spell(hyp, token).penalty
                        candidates.append(Candidate(score: score, parent: r, token: token, logProb: lpc,
                                                    lmLogProb: lmLogProb(r, token), ctc: nil))
                    }
                }
            }
            if let scorer, !pending.isEmpty {
                // A CTC term is the log-ratio of two prefix probabilities, ψ(g+c) ≤ ψ(g), so
                // `score + (1−w)·log p_att(c)` bounds a candidate's joint score. Once `beam`
                // joint scores are known, a candidate bounded below the lowest of them cannot
                // survive, and its prefix recursion — the scorer's whole cost — is skipped.
                // Hypotheses go best bound first so that the bar rises early; the candidates
                // are listed in the usual order, so the result is that of scoring them all.
                func bound(_ r: Int, _ token: Int) -> Double {
                    live[r].score + (1 - w) * Double(logProbs[r * V + token]) + fused(r, token)
                }
                var kept = [[Candidate]](repeating: [], count: live.count)
                var best: [Double] = []  // the best `beam` joint scores so far, descending
                for (r, top) in pending.sorted(by: { bound($0.parent, $0.tokens[0]) > bound($1.parent, $1.tokens[0]) }) {
                    // The slack keeps a rounding excess of ψ(g+c) over ψ(g) from dropping a tie.
                    let bar = best.count == options.beam ? best[options.beam - 1] - 1e-9 : -Double.infinity
                    let tokens = Array(top.prefix { bound(r, $0) >= bar })
                    guard !tokens.isEmpty, let c = live[r].ctc else { continue }
                    let extended = scorer.extend(c, last: live[r].tokens.last, candidates: tokens)
                    extensions.append(extended)
                    for (k, token) in tokens.enumerated() {
                        let lpc = Double(logProbs[r * V + token])
                        let score = live[r].score + (1 - w) * lpc + w * (extended.logPsi[k] - c.logPsi) + fused(r, token)
                            + spell(live[r], token).penalty
                        kept[r].append(Candidate(score: score, parent: r, token: token, logProb: lpc,
                                                 lmLogProb: lmLogProb(r, token), ctc: (extensions.count - 1, k)))
                        let at = best.firstIndex { $0 < score } ?? best.count
                        if at < options.beam {
                            best.insert(score, at: at)
                            if best.count > options.beam { best.removeLast() }
                        }
                    }
                }
                candidates += kept.joined()
            }
            let ranked = BeamRanking.ranked(candidates, limit: options.beam, by: \.score)
            let parents = ranked.map(\.parent)
            live = ranked.map { c in
                let parent = live[c.parent]
                let off = spell(parent, c.token).off
                return Live(tokens: parent.tokens + [c.token], score: c.score,
                            tokenLogProbs: parent.tokenLogProbs + [c.logProb],
                            lmLogProb: parent.lmLogProb + c.lmLogProb,
                            word: off ? [] : spelled, offLexicon: off,
                            ctc: c.ctc.map { extensions[$0.extension].state($0.index) },
                            alignment: parent.alignment + [rows[c.parent]],
                            peak: peaks[c.parent])
            }
            if live.isEmpty { break }
            // Stop once no running hypothesis ranks above the best ended one. Every term of a
            // score is a log-probability (ψ(g+c) ≤ ψ(g) too), so scores only fall: without
            // length normalization nothing running can overtake it any more. With it, a running
            // hypothesis is ranked by its score per token so far, a heuristic: cheap tokens
            // could still raise its average, but tails of garbage do not.
            // (A length bonus γ > 0 lets scores rise again; the rule stays the heuristic it is.)
            if stopsEarly, bestEnded > -.infinity, live.allSatisfy({ rank($0.score, tokens: $0.tokens.count) < bestEnded }) { break }
            state.select(parents)
            lmState?.select(parents)
            ilmState?.select(parents)
        }
        return BeamRanking.ranked(ended, limit: nBest, by: \.score)
    }
}
