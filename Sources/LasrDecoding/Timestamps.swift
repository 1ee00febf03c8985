import Foundation

/// Token and word times from the attention alignment.
///
/// The decoder's attention weights form a `tokens × frames` matrix `α`. A monotonic
/// path assigns each token one frame `f_0 ≤ f_1 ≤ … ≤ f_{N−1}` maximizing
/// `Σ_i log α_{i, f_i}` (dynamic programming over the matrix, O(N·T)): the frame where
/// the decoder listened when it wrote that token, kept in order even where the
/// attention of a single step wanders. Frames become seconds by the encoder's stride.
public enum AttentionAligner {
    /// The best monotonic frame for each row of `attention` (rows × frames).
    public static func monotonicPath(_ attention: [[Float]]) -> [Int] {
        let n = attention.count
        guard n > 0, let frames = attention.first?.count, frames > 0 else { return [] }
        let floor: Float = 1e-12
        // best[j]: best total of rows 0…i with row i at frame j; back[i][j]: argmax over frames ≤ j of row i−1.
        var best = attention[0].map { Foundation.log(max($0, floor)) }
        var back = [[Int32]](repeating: [], count: n)
        for i in 1..<n {
            var prefixArg = [Int32](repeating: 0, count: frames)
            var runningMax = -Float.infinity, runningArg: Int32 = 0
            var next = [Float](repeating: 0, count: frames)
            for j in 0..<frames {
                if best[j] > runningMax { runningMax = best[j]; runningArg = Int32(j) }
                prefixArg[j] = runningArg
                next[j] = runningMax + Foundation.log(max(attention[i][j], floor))
            }
            back[i] = prefixArg
            best = next
        }
        var path = [Int](repeating: 0, count: n)
        var j = best.indices.max { best[$0] < best[$1] }!
        for i in stride(from: n - 1, through: 0, by: -1) {
            path[i] = j
            if i > 0 { j = Int(back[i][j]) }
        }
        return path
    }

    /// The last frame after `frame` (and before `limit`) where `row` keeps at least
    /// `fraction` of its peak: how long the decoder kept listening for this token.
    public static func extent(of row: [Float], from frame: Int, limit: Int, fraction: Float = 0.1) -> Int {
        let peak = row[frame]
        var j = frame
        while j + 1 < min(limit, row.count) && row[j + 1] >= fraction * peak { j += 1 }
        return j
    }
}
