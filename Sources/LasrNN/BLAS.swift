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

    /// Threads OpenBLAS may use for one product.
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }
}
