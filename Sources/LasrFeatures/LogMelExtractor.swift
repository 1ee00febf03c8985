import CFFTW
import Foundation
import LasrCore

/// Log-mel features through FFTW, exactly as `docs/features.md` defines them.
///
/// One extractor owns one real-FFT plan and its aligned buffers, made at init and
/// reused for every frame and every call. An extractor is not safe to use from two
/// threads at once; make one per thread (plan creation is serialized internally,
/// because FFTW's planner is not thread-safe).
public final class LogMelExtractor {
    public let config: FeatureConfig
    private let window: [Float]
    private let filters: MelFilterbank
    private let plan: OpaquePointer
    private let fftIn: UnsafeMutablePointer<Float>
    private let fftOut: UnsafeMutablePointer<fftwf_complex>
    private var power: [Float]
    /// One window's samples where a centered frame reaches past either end of the input.
    private var edgeFrame: [Float]

    private static let plannerLock = NSLock()

    public init(config: FeatureConfig = FeatureConfig()) {
        self.config = config
        let n = config.nFFT
        window = (0..<config.winLength).map { i in
            Float(0.5 - 0.5 * cos(2 * Double.pi * Double(i) / Double(config.winLength)))
        }
        filters = MelFilterbank(config: config)
        fftIn = fftwf_alloc_real(n)!
        fftOut = fftwf_alloc_complex(n / 2 + 1)!
        fftIn.initialize(repeating: 0, count: n)
        power = [Float](repeating: 0, count: n / 2 + 1)
        edgeFrame = [Float](repeating: 0, count: config.winLength)
        LogMelExtractor.plannerLock.lock()
        plan = fftwf_plan_dft_r2c_1d(Int32(n), fftIn, fftOut, UInt32(FFTW_ESTIMATE))!
        LogMelExtractor.plannerLock.unlock()
    }

    deinit {
        LogMelExtractor.plannerLock.lock()
        fftwf_destroy_plan(plan)
        LogMelExtractor.plannerLock.unlock()
        fftwf_free(fftIn)
        fftwf_free(fftOut)
    }

    /// Features of mono samples at `config.sampleRate`: a `frames × nMels` matrix.
    public func compute(_ samples: [Float]) -> Matrix {
        samples.withUnsafeBufferPointer { compute($0) }
    }

    /// Features of mono samples at `config.sampleRate`: a `frames × nMels` matrix.
    public func compute(_ samples: UnsafeBufferPointer<Float>) -> Matrix {
        let frames = config.frameCount(sampleCount: samples.count)
        var output = Matrix(rows: frames, cols: config.nMels)
        guard frames > 0 else { return output }
        let hop = config.hopLength, win = config.winLength, n = samples.count
        output.data.withUnsafeMutableBufferPointer { out in
            for t in 0..<frames {
                let target = out.baseAddress! + t * config.nMels
                let start = config.center ? t * hop - win / 2 : t * hop
                if start >= 0 && start + win <= n {
                    computeFrame(samples.baseAddress! + start, into: target)
                } else {
                    fillEdgeFrame(samples, start: start)
                    edgeFrame.withUnsafeBufferPointer { computeFrame($0.baseAddress!, into: target) }
                }
            }
            finish(out)
        }
        return output
    }

    /// Reflect padding as numpy's and torch's `reflect` mode (the edge sample is not
    /// repeated); positions a single reflection cannot reach (inputs shorter than
    /// half a window) read as zero.
    private func fillEdgeFrame(_ samples: UnsafeBufferPointer<Float>, start: Int) {
        let n = samples.count
        for i in 0..<config.winLength {
            var j = start + i
            if j < 0 { j = -j }
            if j >= n { j = 2 * (n - 1) - j }
            edgeFrame[i] = j >= 0 && j < n ? samples[j] : 0
        }
    }

    /// The whole-call steps after the per-frame log: the dynamic-range clamp, which
    /// needs the maximum over every frame, and the affine rescaling.
    private func finish(_ out: UnsafeMutableBufferPointer<Float>) {
        if let range = config.dynamicRange {
            let low = (out.max() ?? 0) - Float(range)
            for i in out.indices where out[i] < low { out[i] = low }
        }
        if config.offset != 0 || config.scale != 1 {
            let offset = Float(config.offset), scale = Float(config.scale)
            for i in out.indices { out[i] = (out[i] + offset) * scale }
        }
    }

    /// Writes the `nMels` log-mel values of the window starting at `start` to `out`.
    private func computeFrame(_ start: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let win = config.winLength
        window.withUnsafeBufferPointer { w in
            for i in 0..<win { fftIn[i] = start[i] * w[i] }
        }
        // fftIn[win..<nFFT] stays zero from init: FFTW's r2c plan does not write its input.
        fftwf_execute_dft_r2c(plan, fftIn, fftOut)
        let bins = config.nFFT / 2 + 1
        let raw = UnsafeMutableRawPointer(fftOut).assumingMemoryBound(to: Float.self)
        power.withUnsafeMutableBufferPointer { p in
            for k in 0..<bins {
                let re = raw[2 * k], im = raw[2 * k + 1]
                p[k] = re * re + im * im
            }
        }
        let floor = Float(config.logFloor)
        let useLog10 = config.logBase == .ten
        power.withUnsafeBufferPointer { p in
            filters.weights.withUnsafeBufferPointer { w in
                for m in 0..<config.nMels {
                    let from = filters.offsets[m], count = filters.offsets[m + 1] - from
                    let energy = count == 0 ? 0 : VectorMath.dot(p.baseAddress! + filters.firstBin[m],
                                                                 w.baseAddress! + from, count: count)
                    out[m] = useLog10 ? Foundation.log10(max(energy, floor)) : Foundation.log(max(energy, floor))
                }
            }
        }
    }
}
