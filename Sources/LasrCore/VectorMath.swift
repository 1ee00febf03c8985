/// Small vectorized kernels for loops too short or too strided for a BLAS call
/// to pay off (a BLAS call costs ~100 ns; a resampler tap sum is ~200 flops).
public enum VectorMath {
    /// `Σ a[i]·b[i]` for `i < count`, eight lanes at a time.
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var acc0 = SIMD8<Float>()
        var acc1 = SIMD8<Float>()
        var i = 0
        let rawA = UnsafeRawPointer(a)
        let rawB = UnsafeRawPointer(b)
        while i + 16 <= count {
            let a0 = rawA.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let b0 = rawB.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let a1 = rawA.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            let b1 = rawB.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            acc0 = acc0.adding(a0, times: b0)
            acc1 = acc1.adding(a1, times: b1)
            i += 16
        }
        var sum = (acc0 + acc1).sum()
        while i < count {
            sum += a[i] * b[i]
            i += 1
        }
        return sum
    }
}

extension SIMD8 where Scalar == Float {
    /// `self + a·b`, one fused multiply-add per lane in builds for AVX2 + FMA (`make`
    /// passes `-DLASR_AVX2` with `-target-cpu haswell`). Elsewhere a multiply and an
    /// add: without FMA in the compile target `addingProduct` is a libm `fmaf` call
    /// per lane, and a plain `a * b + c` never fuses, because Swift does not contract.
    @inlinable @inline(__always)
    public func adding(_ a: Self, times b: Self) -> Self {
        #if LASR_AVX2
        return addingProduct(a, b)
        #else
        return self + a * b
        #endif
    }
}
