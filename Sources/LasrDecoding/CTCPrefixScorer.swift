import Foundation
import LasrCore

/// CTC prefix probabilities for joint CTC/attention decoding (Watanabe et al. 2017,
/// "Hybrid CTC/Attention Architecture for End-to-End Speech Recognition", Algorithm 2).
///
/// For a prefix g, `r_n(t)` and `r_b(t)` are the probabilities that the CTC paths of
/// frames 0…t emit exactly g and end in a non-blank or a blank; extending g by c gives
///
///     φ(t) = r_b^g(t) if c is g's last token, else r_b^g(t) + r_n^g(t)
///     r_n^{g+c}(t) = (r_n^{g+c}(t−1) + φ(t−1))·x_t(c)
///     r_b^{g+c}(t) = (r_b^{g+c}(t−1) + r_n^{g+c}(t−1))·x_t(blank)
///     ψ(g+c) = r_n^{g+c}(0) + Σ_{t≥1} φ(t−1)·x_t(c)
///
/// The recursion runs in the linear domain in double precision, all candidates of a
/// prefix at once. Each prefix's arrays are rescaled to a maximum of 1 and carry the
/// log of the scale, which cancels in the score differences the beam uses; so there
/// is no log-add-exp in the inner loop.
public struct CTCPrefixScorer {
    public let frames: Int
    let vocabulary: Int
    let blank: Int
    /// `x_t(v)` as probabilities, `frames × V`.
    let probs: [Double]

    /// A prefix's state: scaled `r_n`, `r_b`, the log of their scale, and `log ψ`.
    public struct State: Sendable {
        var rn: [Double]
        var rb: [Double]
        var logScale: Double
        /// log ψ(g): the prefix's own CTC prefix log-probability.
        public var logPsi: Double
    }

    public init(logProbs: Matrix, blank: Int) {
        frames = logProbs.rows
        vocabulary = logProbs.cols
        self.blank = blank
        probs = logProbs.data.map { Foundation.exp(Double($0)) }
    }

    public func initial() -> State {
        var rb = [Double](repeating: 0, count: frames)
        var product = 1.0
        for t in 0..<frames {
            product *= probs[t * vocabulary + blank]
            rb[t] = product
        }
        return State(rn: [Double](repeating: 0, count: frames), rb: rb, logScale: 0, logPsi: 0)
    }

    /// `log ψ(g+c)` for each candidate and the candidates' states. `last` is g's last
    /// token, or nil for the empty prefix.
    public func extend(_ g: State, last: Int?, candidates: [Int]) -> [State] {
        let n = candidates.count, T = frames, V = vocabulary
        var rn = [Double](repeating: 0, count: T * n)   // frame-major: [t][k]
        var rb = [Double](repeating: 0, count: T * n)
        var psi = [Double](repeating: 0, count: n)
        if last == nil {
            for k in 0..<n { rn[k] = probs[candidates[k]]; psi[k] = rn[k] }
        }
        let same = candidates.map { $0 == last }
        probs.withUnsafeBufferPointer { x in
            for t in 1..<max(T, 1) {
                let phiOther = g.rb[t - 1] + g.rn[t - 1], phiSame = g.rb[t - 1]
                let xb = x[t * V + blank]
                let row = t * n, prev = (t - 1) * n
                for k in 0..<n {
                    let phi = same[k] ? phiSame : phiOther
                    let xc = x[t * V + candidates[k]]
                    rn[row + k] = (rn[prev + k] + phi) * xc
                    rb[row + k] = (rb[prev + k] + rn[prev + k]) * xb
                    psi[k] += phi * xc
                }
            }
        }
        return (0..<n).map { k in
            var crn = [Double](repeating: 0, count: T), crb = [Double](repeating: 0, count: T)
            var peak = 0.0
            for t in 0..<T {
                crn[t] = rn[t * n + k]; crb[t] = rb[t * n + k]
                peak = max(peak, crn[t], crb[t])
            }
            let logPsi = psi[k] > 0 ? Foundation.log(psi[k]) + g.logScale : -Double.infinity
            guard peak > 0 else {
                return State(rn: crn, rb: crb, logScale: g.logScale, logPsi: logPsi)
            }
            let inv = 1 / peak
            for t in 0..<T { crn[t] *= inv; crb[t] *= inv }
            return State(rn: crn, rb: crb, logScale: g.logScale + Foundation.log(peak), logPsi: logPsi)
        }
    }

    /// log P_ctc(g): all frames consumed, the prefix complete.
    public func final(_ g: State) -> Double {
        guard frames > 0 else { return -Double.infinity }
        let p = g.rn[frames - 1] + g.rb[frames - 1]
        return p > 0 ? Foundation.log(p) + g.logScale : -Double.infinity
    }
}
