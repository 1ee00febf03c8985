import LasrCore

/// A weight matrix `W` (`n × k`, PyTorch's (out, in)) stored for products with a few
/// rows at a time, `y += x·Wᵀ`: the decoder's beam step, 1 to 32 rows against a
/// matrix of megabytes.
///
/// `sgemm` copies `W` into its packed panel layout on every call, and for the 8 rows
/// of the beam that copy costs about as much as the arithmetic (docs/benchmarks.md);
/// one `sgemv` per row reads all of `W` from memory once per row. Here `W` is put
/// into a panel layout once, at load: groups of 8 outputs, and for each input `j`
/// the 8 weights of that group side by side. A step then reads `W` from memory once:
/// two panels at a time stay in L1 while blocks of four rows pass over them, each
/// step of the inner loop feeding 4 rows × 16 outputs of multiply-adds held in registers.
///
/// The beam step is bound by reading `W`, not by the multiply-adds, so where every
/// weight is exactly a `Float16` — as in lasr models, which store float16 and are
/// converted at load — the panels hold half-precision values, widened in registers
/// (`vcvtph2ps` with the AVX2 build). The products are the same; the bytes read are halved.
public struct PackedWeights: Sendable {
    /// Whether the layers use packed weights for their few-row products. Only where
    /// the build targets AVX2 + FMA (`make` passes `-target-cpu haswell -DLASR_AVX2` on
    /// such CPUs): a generic x86-64 build compiles `SIMD8` to SSE2 pairs, and there the
    /// kernel is slower than OpenBLAS (docs/benchmarks.md).
    public static let preferred: Bool = BuildTarget.usesAVX2

    /// Above this many rows the layers switch to `sgemm`. At beam 20 (20 rows) the packed
    /// kernel still wins clearly: the dev set transcribed two files at a time, one thread
    /// each, read 102.5× real time against 80.1× with `sgemm` (docs/benchmarks.md).
    public static let maxRows = 32

    public let outputs: Int
    public let inputs: Int
    /// `⌈n/8⌉` panels of `k × 8` weights; outputs past `n` in the last panel are 0.
    private let panels: Panels

    // Swift has no `Float16` on macOS for Intel; there the panels stay in single precision.
    private enum Panels {
        case single([Float])
        #if !(os(macOS) && arch(x86_64))
        case half([Float16])
        #endif
    }

    /// Whether the panels are stored in half precision (every weight was exactly a `Float16`).
    public var isHalfPrecision: Bool {
        #if !(os(macOS) && arch(x86_64))
        if case .half = panels { return true }
        #endif
        return false
    }

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
        #if !(os(macOS) && arch(x86_64))
        let half = p.map { Float16($0) }
        if zip(half, p).allSatisfy({ Float($0) == $1 }) {
            panels = .half(half)
            return
        }
        #endif
        panels = .single(p)
    }

    /// `y[r][o] += Σ_j x[r][j]·W[o][j]` for `rows` rows of `x` (row stride `inputs`) into
    /// `y` (row stride `outputs`).
    public func accumulate(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        switch panels {
        case .single(let p):
            p.withUnsafeBytes { accumulate(SingleColumns.self, $0.baseAddress!, x, rows: rows, into: y) }
        #if !(os(macOS) && arch(x86_64))
        case .half(let p):
            p.withUnsafeBytes { accumulate(HalfColumns.self, $0.baseAddress!, x, rows: rows, into: y) }
        #endif
        }
    }

    private func accumulate<C: PanelColumns>(_: C.Type, _ raw: UnsafeRawPointer, _ x: UnsafePointer<Float>, rows: Int,
                                              into y: UnsafeMutablePointer<Float>) {
        let n = outputs, k = inputs, groups = (n + 7) / 8
        let panelBytes = k * C.bytes
        func add(_ a: SIMD8<Float>, row: Int, group: Int) {
            let out = y + row * n + group * 8
            for l in 0..<min(8, n - group * 8) { out[l] += a[l] }
        }
        // Two panels (16 outputs) × 4 rows per pass: 8 accumulators, and each
        // broadcast input feeds two multiply-adds. An odd last panel goes alone.
        var group = 0
        while group < groups {
            let pair = group + 2 <= groups
            let p0 = raw + group * panelBytes, p1 = p0 + panelBytes
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
                        let w0 = C.load(p0, column: j), w1 = C.load(p1, column: j)
                        let s0 = SIMD8<Float>(repeating: x0[j]), s1 = SIMD8<Float>(repeating: x1[j])
                        let s2 = SIMD8<Float>(repeating: x2[j]), s3 = SIMD8<Float>(repeating: x3[j])
                        a0 = a0.adding(w0, times: s0); b0 = b0.adding(w1, times: s0)
                        a1 = a1.adding(w0, times: s1); b1 = b1.adding(w1, times: s1)
                        a2 = a2.adding(w0, times: s2); b2 = b2.adding(w1, times: s2)
                        a3 = a3.adding(w0, times: s3); b3 = b3.adding(w1, times: s3)
                    }
                } else {
                    for j in 0..<k {
                        let w = C.load(p0, column: j)
                        a0 = a0.adding(w, times: SIMD8(repeating: x0[j]))
                        a1 = a1.adding(w, times: SIMD8(repeating: x1[j]))
                        a2 = a2.adding(w, times: SIMD8(repeating: x2[j]))
                        a3 = a3.adding(w, times: SIMD8(repeating: x3[j]))
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

/// How one column of a panel (the 8 weights of input `j`) is read into registers.
private protocol PanelColumns {
    static var bytes: Int { get }
    static func load(_ panel: UnsafeRawPointer, column j: Int) -> SIMD8<Float>
}

private enum SingleColumns: PanelColumns {
    static var bytes: Int { 32 }
    @inline(__always) static func load(_ panel: UnsafeRawPointer, column j: Int) -> SIMD8<Float> {
        panel.loadUnaligned(fromByteOffset: j * 32, as: SIMD8<Float>.self)
    }
}

#if !(os(macOS) && arch(x86_64))
private enum HalfColumns: PanelColumns {
    static var bytes: Int { 16 }
    @inline(__always) static func load(_ panel: UnsafeRawPointer, column j: Int) -> SIMD8<Float> {
        SIMD8<Float>(panel.loadUnaligned(fromByteOffset: j * 16, as: SIMD8<Float16>.self))
    }
}
#endif
