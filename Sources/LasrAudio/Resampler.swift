import Foundation
import LasrCore

/// A band-limited, streaming sample-rate converter: windowed-sinc (Kaiser)
/// interpolation evaluated as a polyphase filter.
///
/// For a rational ratio `L/M` (output/input, reduced), output sample `n` sits at
/// input position `t = n·M/L`. It is `Σ_k x[k]·h(k − t)` with
/// `h(d) = fc·sinc(fc·d)·kaiser(d / halfWidth)`, where `fc = min(1, L/M)·rolloff`
/// is the cutoff as a fraction of the input Nyquist rate — so when downsampling,
/// everything above `rolloff` × the output Nyquist rate is removed before it can alias.
/// There is no delay: output `n` is centered on input time `n·M/L`, which keeps
/// timestamps exact. Samples before the start and after the end count as zero.
///
/// Each of the `L` phases of `h` is tabulated once (when `L` ≤ 2048; rarer ratios
/// compute taps per sample), so a sample costs one dot product of `2·⌈halfWidth⌉` taps.
public final class Resampler {
    /// Design parameters; the defaults give a flat passband (< 0.01 dB ripple up to
    /// 0.9 × output Nyquist) and > 80 dB rejection of what would alias.
    public struct Quality: Sendable, Equatable {
        /// Zero crossings of the sinc on each side of the center.
        public var zeroCrossings: Int
        /// Cutoff as a fraction of the lower Nyquist rate.
        public var rolloff: Double
        /// Kaiser window shape; larger trades transition width for stopband depth.
        public var kaiserBeta: Double

        public init(zeroCrossings: Int = 32, rolloff: Double = 0.945, kaiserBeta: Double = 8.6) {
            self.zeroCrossings = zeroCrossings
            self.rolloff = rolloff
            self.kaiserBeta = kaiserBeta
        }
    }

    /// Input rates lasr reads. Outside them a header is damaged, and the cost per
    /// sample is unbounded: from 1 Hz every output sample needs its own taps (16000
    /// phases), from 4 GHz the filter has millions of taps.
    public static let inputRates = 1000...384_000  // as `lasr stream --rate` accepts

    public let inputRate: Int
    public let outputRate: Int
    private let up: Int      // L
    private let down: Int    // M
    private let halfTaps: Int  // K: taps are x[i-K+1 ... i+K]
    private let cutoff: Double
    private let halfWidth: Double
    private let quality: Quality
    /// `up × 2K` taps, phase-major, when tabulated.
    private let table: [Float]?
    private var scratchTaps: [Float]

    /// Pending input; `buffer[0]` is input sample number `bufferStart` (negative before the start).
    private var buffer: [Float] = []
    private var bufferStart: Int
    private var inputCount = 0
    private var produced = 0
    private var finished = false

    public init(inputRate: Int, outputRate: Int, quality: Quality = Quality()) {
        precondition(inputRate > 0 && outputRate > 0, "sample rates must be positive")
        self.inputRate = inputRate
        self.outputRate = outputRate
        self.quality = quality
        let g = Resampler.gcd(inputRate, outputRate)
        up = outputRate / g
        down = inputRate / g
        cutoff = min(1.0, Double(up) / Double(down)) * quality.rolloff
        halfWidth = Double(quality.zeroCrossings) / cutoff
        halfTaps = up == down ? 1 : Int(halfWidth.rounded(.up))
        scratchTaps = [Float](repeating: 0, count: 2 * halfTaps)
        if up == down {
            table = nil
        } else if up <= 2048 {
            var t = [Float](repeating: 0, count: up * 2 * halfTaps)
            for p in 0..<up {
                Resampler.fillTaps(&t, at: p * 2 * halfTaps, phase: Double(p) / Double(up),
                                   halfTaps: halfTaps, cutoff: cutoff, halfWidth: halfWidth, beta: quality.kaiserBeta)
            }
            table = t
        } else {
            table = nil
        }
        bufferStart = -halfTaps
        buffer = [Float](repeating: 0, count: halfTaps)
    }

    /// Number of output samples `count` input samples become: `⌈count·L/M⌉`, or
    /// `Int.max` when that does not fit (a header's frame count can be anything).
    public static func outputCount(inputCount: Int, inputRate: Int, outputRate: Int) -> Int {
        let g = gcd(inputRate, outputRate)
        let l = outputRate / g, m = inputRate / g
        // count·L overflows for a 2^36-frame FLAC header at 44.1 → 16 kHz; q·L + ⌈r·L/M⌉ does
        // not until the result itself does (r < M and L are rates, so r·L fits).
        let (q, r) = inputCount.quotientAndRemainder(dividingBy: m)
        let (whole, overflow) = q.multipliedReportingOverflow(by: l)
        let (total, carry) = whole.addingReportingOverflow((r * l + m - 1) / m)
        return overflow || carry ? Int.max : total
    }

    /// Appends the output that `input` makes available to `output`.
    public func process(_ input: UnsafeBufferPointer<Float>, into output: inout [Float]) {
        precondition(!finished, "Resampler.process after finish")
        inputCount += input.count
        if up == down {
            output.append(contentsOf: input)
            produced += input.count
            return
        }
        buffer.append(contentsOf: input)
        drain(into: &output, limit: Int.max)
    }

    /// Convenience for arrays.
    public func process(_ input: [Float], into output: inout [Float]) {
        input.withUnsafeBufferPointer { process($0, into: &output) }
    }

    /// Flushes the tail (the input is taken to be zero past its end) and ends the stream.
    public func finish(into output: inout [Float]) {
        guard !finished else { return }
        finished = true
        guard up != down else { return }
        let total = Resampler.outputCount(inputCount: inputCount, inputRate: inputRate, outputRate: outputRate)
        buffer.append(contentsOf: repeatElement(0, count: halfTaps + 1))
        drain(into: &output, limit: total)
    }

    private func drain(into output: inout [Float], limit: Int) {
        let taps = 2 * halfTaps
        // Output n needs input up to floor(n·M/L) + K; with `available` samples held
        // that allows every n < ⌈(available − K)·L / M⌉.
        let available = bufferStart + buffer.count
        let reachable = max(0, ((available - halfTaps) * up + down - 1) / down)
        let end = min(limit, reachable)
        guard end > produced else { return }
        let first = output.count
        output.append(contentsOf: repeatElement(0, count: end - produced))
        buffer.withUnsafeBufferPointer { buf in
            output.withUnsafeMutableBufferPointer { out in
                var o = first
                if let table {
                    table.withUnsafeBufferPointer { t in
                        for n in produced..<end {
                            let position = n * down
                            let i = position / up
                            let start = i - halfTaps + 1 - bufferStart
                            out[o] = VectorMath.dot(buf.baseAddress! + start, t.baseAddress! + (position - i * up) * taps, count: taps)
                            o += 1
                        }
                    }
                } else {
                    for n in produced..<end {
                        let position = n * down
                        let i = position / up
                        Resampler.fillTaps(&scratchTaps, at: 0, phase: Double(position - i * up) / Double(up),
                                           halfTaps: halfTaps, cutoff: cutoff, halfWidth: halfWidth, beta: quality.kaiserBeta)
                        out[o] = scratchTaps.withUnsafeBufferPointer { t in
                            VectorMath.dot(buf.baseAddress! + (i - halfTaps + 1 - bufferStart), t.baseAddress!, count: taps)
                        }
                        o += 1
                    }
                }
            }
        }
        produced = end
        // Drop input no future output can reach; compact only now and then so the
        // cost stays linear in the stream length.
        let keepFrom = (produced * down) / up - halfTaps + 1 - bufferStart
        if keepFrom > 0 && keepFrom >= buffer.count / 2 {
            let drop = min(keepFrom, buffer.count)
            buffer.removeFirst(drop)
            bufferStart += drop
        }
    }

    private static func fillTaps(_ taps: inout [Float], at offset: Int, phase: Double, halfTaps: Int,
                                 cutoff: Double, halfWidth: Double, beta: Double) {
        let i0Beta = besselI0(beta)
        var sum = 0.0
        var values = [Double](repeating: 0, count: 2 * halfTaps)
        for j in 0..<(2 * halfTaps) {
            let d = Double(j - halfTaps + 1) - phase
            let x = d / halfWidth
            guard abs(x) < 1 else { continue }
            let arg = Double.pi * cutoff * d
            let sinc = abs(arg) < 1e-12 ? 1.0 : sin(arg) / arg
            let window = besselI0(beta * (1 - x * x).squareRoot()) / i0Beta
            values[j] = cutoff * sinc * window
            sum += values[j]
        }
        // Exact unit gain at DC for every phase: no amplitude ripple at the output rate.
        for j in 0..<(2 * halfTaps) {
            taps[offset + j] = Float(values[j] / sum)
        }
    }

    /// Modified Bessel function of the first kind, order 0 (power series).
    static func besselI0(_ x: Double) -> Double {
        var sum = 1.0, term = 1.0
        let half = x / 2
        var k = 1.0
        while term > 1e-12 * sum {
            term *= (half / k) * (half / k)
            sum += term
            k += 1
        }
        return sum
    }

    static func gcd(_ a: Int, _ b: Int) -> Int {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }
}
