/// The oracle error counts of an n-best list: those of the choice of one reading per
/// segment that makes the fewest word errors against the reference. They bound what
/// re-ranking the list (a stronger LM, other weights) could reach with the same search.
public enum OracleErrorRate {
    /// `segments[s]` holds the normalized readings of segment s, in the search's order.
    /// Combinations are tried in that order up to `limit`; past it the counts are an upper
    /// bound (only utterances cut into many segments come near it).
    public static func closest(reference: [String], segments: [[String]], limit: Int = 4096) -> EditCounts {
        let lists = segments.map { readings in
            (readings.isEmpty ? [""] : readings).map { $0.split(separator: " ").map(String.init) }
        }
        var choice = [Int](repeating: 0, count: lists.count)
        var best: EditCounts?
        for _ in 0..<limit {
            let counts = EditDistance.align(reference, zip(lists, choice).flatMap { $0[$1] }).counts
            if best.map({ counts.errors < $0.errors }) ?? true { best = counts }
            // The next combination, last segment fastest; done when every one was tried.
            var s = lists.count - 1
            while s >= 0 {
                choice[s] += 1
                if choice[s] < lists[s].count { break }
                choice[s] = 0
                s -= 1
            }
            if s < 0 { break }
        }
        return best ?? EditDistance.align(reference, []).counts
    }
}
