import COpenBLAS

/// Row-major matrix products through OpenBLAS's CBLAS interface.
public enum BLAS {
    /// `C = alpha·op(A)·op(B) + beta·C` with `op(A)` m×k, `op(B)` k×n, `C` m×n, all row-major.
    /// Leading dimensions default to the packed ones.
    @inlinable
    public static func gemm(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false,
        alpha: Float = 1, beta: Float = 0, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil
    ) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha,
            a, Int32(lda ?? (transA ? m : k)),
            b, Int32(ldb ?? (transB ? k : n)),
            beta, c, Int32(ldc ?? n))
    }

    /// `y[rows × n] = x[rows × k]·Wᵀ (+ y when accumulating)` for a row-major `W` of
    /// `n × k`: the shape of every layer applied to a few decoder states. Below
    /// `gemvRows` rows it runs one matrix-vector product per row, which streams `W`
    /// without the packing copy `sgemm` makes of it on every call (for the decoder's
    /// LSTM that copy costs more than the arithmetic).
    @inlinable
    public static func rowsTimesTransposed(
        _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
        rows: Int, n: Int, k: Int, beta: Float, ldw: Int? = nil
    ) {
        if rows < gemvRows {
            for r in 0..<rows {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), 1, w, Int32(ldw ?? k),
                            x + r * k, 1, beta, y + r * n, 1)
            }
        } else {
            gemm(x, w, y, m: rows, n: n, k: k, transB: true, beta: beta, ldb: ldw)
        }
    }

    /// `y = alpha·op(A)·x + beta·y` for a row-major `A` of `m × n` (leading dimension `lda`).
    @inlinable
    public static func gemv(_ a: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                            m: Int, n: Int, lda: Int, transA: Bool = false, alpha: Float = 1, beta: Float = 0) {
        guard m > 0, n > 0 else { return }
        cblas_sgemv(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda),
                    x, 1, beta, y, 1)
    }

    /// Row count from which `rowsTimesTransposed` switches to `sgemm` (measured: docs/benchmarks.md).
    public static let gemvRows = 6

    /// Threads OpenBLAS may use for one product.
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// `y[r][v] = Σ_j x[r][j]·W[v][j]` for a few rows `x` (`rows × k`) and a tall
    /// row-major `W` (`n × k`): Whisper's output projection, where `W` is the token
    /// embedding (51 864 × 384 and larger, 80 MB and up). `sgemm` would first copy
    /// `W` into its packed layout and one `sgemv` per row would read all of it from
    /// memory once per row; here `W` goes in blocks that stay in cache while every
    /// row's `sgemv` uses them, so it is read from memory once.
    public static func fewRowsTimesTransposed(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                              _ y: UnsafeMutablePointer<Float>, rows: Int, n: Int, k: Int) {
        let block = max(1, (1 << 18) / max(k, 1))  // about 4 MB of W per block
        var from = 0
        while from < n {
            let count = min(block, n - from)
            for r in 0..<rows {
                gemv(w + from * k, x + r * k, y + r * n + from, m: count, n: k, lda: k)
            }
            from += count
        }
    }
}
