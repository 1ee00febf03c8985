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
        /// The first frame where `r_n` or `r_b` may be non-zero: a prefix of L tokens
        /// needs L frames, so the recursion of its extensions starts there.
        var first: Int
        /// log ψ(g): the prefix's own CTC prefix log-probability.
        public var logPsi: Double
    }

    /// The extensions of one prefix by its candidates: their `log ψ`, and their states
    /// on demand, since the beam keeps only a few of them.
    public struct Extension {
        /// `log ψ(g+c)` per candidate, in the order of `candidates`.
        public let logPsi: [Double]
        let rn: [Double], rb: [Double]   // frame-major: [t][k]
        let count: Int, frames: Int, first: Int, logScale: Double

        /// The state of candidate `k`, rescaled to a maximum of 1.
        public func state(_ k: Int) -> State {
            var crn = [Double](repeating: 0, count: frames), crb = [Double](repeating: 0, count: frames)
            var peak = 0.0
            crn.withUnsafeMutableBufferPointer { crn in
                crb.withUnsafeMutableBufferPointer { crb in
                    rn.withUnsafeBufferPointer { rn in
                        rb.withUnsafeBufferPointer { rb in
                            for t in first..<frames {
                                crn[t] = rn[t * count + k]; crb[t] = rb[t * count + k]
                                peak = max(peak, crn[t], crb[t])
                            }
                            guard peak > 0 else { return }
                            let inv = 1 / peak
                            for t in first..<frames { crn[t] *= inv; crb[t] *= inv }
                        }
                    }
                }
            }
            let scale = peak > 0 ? logScale + Foundation.log(peak) : logScale
            return State(rn: crn, rb: crb, logScale: scale, first: first, logPsi: logPsi[k])
        }
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
        return State(rn: [Double](repeating: 0, count: frames), rb: rb, logScale: 0, first: 0, logPsi: 0)
    }

    /// `log ψ(g+c)` for each candidate, with their states on demand. `last` is g's last
    /// token, or nil for the empty prefix.
    public func extend(_ g: State, last: Int?, candidates: [Int]) -> Extension {
        let n = candidates.count, T = frames, V = vocabulary
        // Before g's first non-zero frame every φ is 0, so every extension stays 0 there.
        let start = max(1, g.first + 1)
        // Only the frames before `start` need zeros; the recursion writes the rest.
        func frameMajor() -> [Double] {
            guard T * n > 0 else { return [] }
            return [Double](unsafeUninitializedCapacity: T * n) { buffer, count in
                buffer.baseAddress!.update(repeating: 0, count: min(start, T) * n)
                count = T * n
            }
        }
        var rn = frameMajor()
        var rb = frameMajor()
        var psi = [Double](repeating: 0, count: n)
        if last == nil, T > 0 {
            for k in 0..<n { rn[k] = probs[candidates[k]]; psi[k] = rn[k] }
        }
        // An extension can be non-zero from one frame after g is.
        let first = last == nil ? 0 : min(start, T)
        let same = candidates.map { $0 == last }
        probs.withUnsafeBufferPointer { x in
        g.rn.withUnsafeBufferPointer { grn in
        g.rb.withUnsafeBufferPointer { grb in
        candidates.withUnsafeBufferPointer { cand in
        same.withUnsafeBufferPointer { same in
        rn.withUnsafeMutableBufferPointer { rn in
        rb.withUnsafeMutableBufferPointer { rb in
        psi.withUnsafeMutableBufferPointer { psi in
            var t = start
            while t < T {
                let phiOther = grb[t - 1] + grn[t - 1], phiSame = grb[t - 1]
                let xt = x.baseAddress! + t * V
                let xb = xt[blank]
                let row = t * n, prev = row - n
                for k in 0..<n {
                    let phi = same[k] ? phiSame : phiOther
                    let xc = xt[cand[k]]
                    let rnPrev = rn[prev + k]
                    rn[row + k] = (rnPrev + phi) * xc
                    rb[row + k] = (rb[prev + k] + rnPrev) * xb
                    psi[k] += phi * xc
                }
                t += 1
            }
        }}}}}}}}
        let logPsi = psi.map { $0 > 0 ? Foundation.log($0) + g.logScale : -Double.infinity }
        return Extension(logPsi: logPsi, rn: rn, rb: rb, count: n, frames: T, first: first, logScale: g.logScale)
    }

    /// log P_ctc(g): all frames consumed, the prefix complete.
    public func final(_ g: State) -> Double {
        guard frames > 0 else { return -Double.infinity }
        let p = g.rn[frames - 1] + g.rb[frames - 1]
        return p > 0 ? Foundation.log(p) + g.logScale : -Double.infinity
    }
}
