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

    /// The frames each token spans: from the previous token's path frame to its own
    /// (token 0 from `maxFrames` before its own). A listen-attend-spell decoder writes a
    /// token once it has heard it, so the attention peak of a token sits at its end
    /// rather than at its start: on the LibriSpeech dev words the first token's peak
    /// came about 200 ms after the word's forced-alignment start and the last token's
    /// about 50 ms after its end (docs/alignments.md). `maxFrames` bounds a token whose
    /// previous peak lies far back (after a pause, or where the attention moved on
    /// late); the recognizer takes it from the model's calibrated
    /// `timestamps.max_token_span`.
    public static func spans(_ path: [Int], maxFrames: Int) -> [(first: Int, last: Int)] {
        path.indices.map { i in
            let floor = max(0, path[i] - maxFrames)
            return (i > 0 ? min(path[i], max(path[i - 1], floor)) : floor, path[i])
        }
    }
}
