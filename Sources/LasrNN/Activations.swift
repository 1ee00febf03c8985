import Foundation
import LasrCore

/// Elementwise activations over contiguous buffers, eight lanes at a time.
///
/// `exp` is a vectorized approximation (range reduction to 2^k·e^f with |f| ≤ ln2/2
/// and a degree-7 polynomial): relative error below 2e-7 over the float range,
/// far inside the 1e-3 parity tolerance with the PyTorch recipe, and several times
/// faster than calling libm per element in the attention's hot loop.
///
/// The per-vector functions are `@inlinable` so that the attention's loop in
/// LasrModel inlines them: called across the module boundary, `tanh` cost a call per
/// eight lanes.
public enum Activations {
    @inlinable @inline(__always)
    public static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        // `replacing(with:where:)` compiles to vector blends; `clamped` is a generic call per lane.
        let clamped = x.replacing(with: -87, where: x .< -87).replacing(with: 88, where: x .> 88)
        // Round x·log2(e) to the nearest integer k by adding 1.5·2^23: the sum's low
        // mantissa bits then hold k itself (generic SIMD rounding and Float→Int
        // conversion are element-by-element calls in Swift, this is two vector adds).
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let shifted = clamped * 1.442_695_04 + magic
        let k = shifted - magic
        let kBits = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let f = (clamped - k * 0.693_145_75) - k * 1.428_606_8e-6  // x − k·ln2, in two parts for accuracy
        var p = SIMD8<Float>(repeating: 1.984_127e-4)
        p = SIMD8(repeating: 1.388_888_9e-3).adding(p, times: f)
        p = SIMD8(repeating: 8.333_333_5e-3).adding(p, times: f)
        p = SIMD8(repeating: 4.166_666_8e-2).adding(p, times: f)
        p = SIMD8(repeating: 0.166_666_67).adding(p, times: f)
        p = SIMD8(repeating: 0.5).adding(p, times: f)
        p = SIMD8(repeating: 1).adding(p, times: f)
        p = SIMD8(repeating: 1).adding(p, times: f)
        let bits = (kBits &+ 127) &<< 23
        // Below −87 the true value is under the smallest normal float: 0, which also makes exp(−∞) = 0.
        return (p * unsafeBitCast(bits, to: SIMD8<Float>.self)).replacing(with: 0, where: x .< -87)
    }

    @inlinable @inline(__always)
    public static func tanh(_ x: SIMD8<Float>) -> SIMD8<Float> {
        // tanh(x) = 1 − 2/(e^{2x} + 1); saturates cleanly at ±1 for large |x|.
        let e = exp(x + x)
        return 1 - 2 / (e + 1)
    }

    @inlinable @inline(__always)
    public static func sigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> {
        1 / (1 + exp(-x))
    }

    /// Applies `f` to `count` values at `p` in place.
    @inline(__always)
    public static func apply(_ p: UnsafeMutablePointer<Float>, count: Int, _ f: (SIMD8<Float>) -> SIMD8<Float>) {
        let raw = UnsafeMutableRawPointer(p)
        var i = 0
        while i + 8 <= count {
            raw.storeBytes(of: f(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)),
                           toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        if i < count {
            var tail = SIMD8<Float>()
            for j in i..<count { tail[j - i] = p[j] }
            let r = f(tail)
            for j in i..<count { p[j] = r[j - i] }
        }
    }

    public static func relu(_ p: UnsafeMutablePointer<Float>, count: Int) {
        apply(p, count: count) { $0.replacing(with: 0, where: $0 .< 0) }
    }

    public static func silu(_ p: UnsafeMutablePointer<Float>, count: Int) {
        apply(p, count: count) { $0 * sigmoid($0) }
    }

    public static func tanh(_ p: UnsafeMutablePointer<Float>, count: Int) {
        apply(p, count: count) { tanh($0) }
    }

    public static func sigmoid(_ p: UnsafeMutablePointer<Float>, count: Int) {
        apply(p, count: count) { sigmoid($0) }
    }

    /// In-place softmax of one row; entries equal to `-infinity` get weight 0.
    public static func softmax(_ p: UnsafeMutablePointer<Float>, count: Int) {
        let maxValue = maximum(p, count: count)
        guard maxValue > -Float.infinity else { return }
        apply(p, count: count) { exp($0 - maxValue) }
        let raw = UnsafeMutableRawPointer(p)
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= count { acc += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self); i += 8 }
        var sum = acc.sum()
        while i < count { sum += p[i]; i += 1 }
        let scale = 1 / sum
        apply(p, count: count) { $0 * scale }
    }

    /// The largest of `count` values (−∞ for none), eight lanes at a time.
    public static func maximum(_ p: UnsafePointer<Float>, count: Int) -> Float {
        let raw = UnsafeRawPointer(p)
        var acc = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            acc = acc.replacing(with: v, where: v .> acc)
            i += 8
        }
        var m = acc.max()
        while i < count { m = max(m, p[i]); i += 1 }
        return m
    }

    /// In-place GELU with the error function, `x·Φ(x) = ½x(1 + erf(x/√2))`: PyTorch's
    /// default `nn.GELU`, which Whisper uses (not the tanh approximation).
    public static func gelu(_ p: UnsafeMutablePointer<Float>, count: Int) {
        apply(p, count: count) { x in 0.5 * x * (1 + erf(x * 0.70710678118654752)) }
    }

    /// erf by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), eight lanes at a time.
    public static func erf(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let a = x.replacing(with: -x, where: x .< 0)
        let one = SIMD8<Float>(repeating: 1)
        let t = one / (one + 0.3275911 * a)
        var poly = SIMD8<Float>(repeating: 1.061405429)
        poly = poly * t - 1.453152027
        poly = poly * t + 1.421413741
        poly = poly * t - 0.284496736
        poly = poly * t + 0.254829592
        poly = poly * t
        let e: SIMD8<Float> = Activations.exp(-(a * a))
        let y: SIMD8<Float> = one - poly * e
        return y.replacing(with: -y, where: x .< 0)
    }

    /// In-place log-softmax of one row.
    public static func logSoftmax(_ p: UnsafeMutablePointer<Float>, count: Int) {
        let maxValue = maximum(p, count: count)
        guard maxValue > -Float.infinity else { return }
        // Σ exp(x − max) eight lanes at a time (Whisper's 51 864-way rows make this hot).
        let raw = UnsafeRawPointer(p)
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            acc += exp(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - maxValue)
            i += 8
        }
        var sum = acc.sum()
        while i < count { sum += Foundation.exp(p[i] - maxValue); i += 1 }
        let shift = maxValue + Foundation.log(sum)
        for i in 0..<count { p[i] -= shift }
    }
}

