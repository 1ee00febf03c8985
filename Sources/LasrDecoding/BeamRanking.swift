/// What one step of a beam search does the same way for every decoder in lasr:
/// which next tokens a hypothesis proposes, and in what order the candidates of all
/// hypotheses compete for the beam. `BeamSearch` (the native joint CTC/attention
/// search) and Whisper's search in `WhisperRecognizer` both run on these; they
/// differ only in how a candidate is scored and when a hypothesis ends.
///
/// Ties are broken deterministically (lower token id first, then order of proposal)
/// so that a search is reproducible across platforms and matches the recipe's
/// stable sorts in `training/lasr_train/decode.py`.
public enum BeamRanking {
    /// The ids of the `k` largest finite values of `row` among the `allowed` ids,
    /// best first; equal values in increasing id order. One pass with a sorted
    /// buffer of `k`: a beam proposes a handful of tokens out of up to 52 000.
    public static func topTokens(_ row: UnsafeBufferPointer<Float>, k: Int,
                                 allowed: (Int) -> Bool = { _ in true }) -> [Int] {
        guard k > 0 else { return [] }
        var ids: [Int] = []
        var values: [Float] = []
        ids.reserveCapacity(k + 1)
        values.reserveCapacity(k + 1)
        for (id, v) in row.enumerated() where v.isFinite {
            if values.count == k && !(v > values[k - 1]) { continue }
            guard allowed(id) else { continue }
            // After every equal value: ids arrive in increasing order.
            var at = values.count
            while at > 0 && values[at - 1] < v { at -= 1 }
            values.insert(v, at: at)
            ids.insert(id, at: at)
            if values.count > k {
                values.removeLast()
                ids.removeLast()
            }
        }
        return ids
    }

    /// `topTokens` over an array.
    public static func topTokens(_ row: [Float], k: Int, allowed: (Int) -> Bool = { _ in true }) -> [Int] {
        row.withUnsafeBufferPointer { topTokens($0, k: k, allowed: allowed) }
    }

    /// The candidates best first by `score`, equal scores in their order of proposal;
    /// at most `limit` of them.
    public static func ranked<C>(_ candidates: [C], limit: Int = .max, by score: (C) -> Double) -> [C] {
        let order = candidates.indices.sorted { a, b in
            let sa = score(candidates[a]), sb = score(candidates[b])
            return sa != sb ? sa > sb : a < b
        }
        return order.prefix(limit).map { candidates[$0] }
    }
}
