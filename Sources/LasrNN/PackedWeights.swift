/// A weight matrix `W` (`n × k`, PyTorch's (out, in)) stored for products with a few
/// rows at a time, `y += x·Wᵀ`: the decoder's beam step, 1 to 16 rows against a
/// matrix of megabytes.
///
/// `sgemm` copies `W` into its packed panel layout on every call, and for the 8 rows
/// of the beam that copy costs about as much as the arithmetic (docs/benchmarks.md);
/// one `sgemv` per row reads all of `W` from memory once per row. Here `W` is put
/// into a panel layout once, at load: groups of 8 outputs, and for each input `j`
/// the 8 weights of that group side by side. A step then reads `W` from memory once:
/// two panels at a time stay in L1 while blocks of four rows pass over them, each
/// step of the inner loop feeding 4 rows × 16 outputs of multiply-adds held in registers.
public struct PackedWeights: Sendable {
    /// Whether the layers use packed weights for their few-row products. Only where
    /// the build targets AVX2 + FMA (`make` passes `-target-cpu haswell -DLASR_AVX2` on
    /// such CPUs): a generic x86-64 build compiles `SIMD8` to SSE2 pairs, and there the
    /// kernel is slower than OpenBLAS (docs/benchmarks.md).
    public static let preferred: Bool = {
        #if LASR_AVX2
        return true
        #else
        return false
        #endif
    }()

    /// Above this many rows `sgemm`'s packing pays for itself; the layers switch to it.
    public static let maxRows = 16

    public let outputs: Int
    public let inputs: Int
    /// `⌈n/8⌉` panels of `k × 8` floats; outputs past `n` in the last panel are 0.
    private let panels: [Float]

    public init(_ w: UnsafePointer<Float>, outputs n: Int, inputs k: Int, ldw: Int? = nil) {
        let ld = ldw ?? k
        outputs = n
        inputs = k
        let groups = (n + 7) / 8
        var p = [Float](repeating: 0, count: groups * k * 8)
        for o in 0..<n {
            let base = (o / 8) * k * 8 + o % 8
            for j in 0..<k { p[base + j * 8] = w[o * ld + j] }
        }
        panels = p
    }

    /// `y[r][o] += Σ_j x[r][j]·W[o][j]` for `rows` rows of `x` (row stride `inputs`) into
    /// `y` (row stride `outputs`).
    public func accumulate(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        let n = outputs, k = inputs, groups = (n + 7) / 8
        panels.withUnsafeBufferPointer { buffer in
            let raw = UnsafeRawPointer(buffer.baseAddress!)
            func add(_ a: SIMD8<Float>, row: Int, group: Int) {
                let out = y + row * n + group * 8
                for l in 0..<min(8, n - group * 8) { out[l] += a[l] }
            }
            // Two panels (16 outputs) × 4 rows per pass: 8 accumulators, and each
            // broadcast input feeds two multiply-adds. An odd last panel goes alone.
            var group = 0
            while group < groups {
                let pair = group + 2 <= groups
                let p0 = raw + group * k * 32, p1 = p0 + k * 32
                var r = 0
                while r < rows {
                    let block = min(4, rows - r)
                    // Rows past `block` repeat the last row so the loop has no branches; their sums are dropped.
                    let x0 = x + r * k
                    let x1 = x + (r + min(1, block - 1)) * k
                    let x2 = x + (r + min(2, block - 1)) * k
                    let x3 = x + (r + min(3, block - 1)) * k
                    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                    var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
                    if pair {
                        for j in 0..<k {
                            let w0 = p0.loadUnaligned(fromByteOffset: j * 32, as: SIMD8<Float>.self)
                            let w1 = p1.loadUnaligned(fromByteOffset: j * 32, as: SIMD8<Float>.self)
                            let s0 = SIMD8<Float>(repeating: x0[j]), s1 = SIMD8<Float>(repeating: x1[j])
                            let s2 = SIMD8<Float>(repeating: x2[j]), s3 = SIMD8<Float>(repeating: x3[j])
                            a0 += w0 * s0; b0 += w1 * s0
                            a1 += w0 * s1; b1 += w1 * s1
                            a2 += w0 * s2; b2 += w1 * s2
                            a3 += w0 * s3; b3 += w1 * s3
                        }
                    } else {
                        for j in 0..<k {
                            let w = p0.loadUnaligned(fromByteOffset: j * 32, as: SIMD8<Float>.self)
                            a0 += w * x0[j]
                            a1 += w * x1[j]
                            a2 += w * x2[j]
                            a3 += w * x3[j]
                        }
                    }
                    func store(_ a: SIMD8<Float>, _ b: SIMD8<Float>, row: Int) {
                        add(a, row: row, group: group)
                        if pair { add(b, row: row, group: group + 1) }
                    }
                    store(a0, b0, row: r)
                    if block > 1 { store(a1, b1, row: r + 1) }
                    if block > 2 { store(a2, b2, row: r + 2) }
                    if block > 3 { store(a3, b3, row: r + 3) }
                    r += block
                }
                group += pair ? 2 : 1
            }
        }
    }
}
