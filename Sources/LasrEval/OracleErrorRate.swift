/// The oracle error count of an n-best list: the fewest word errors any choice of one
/// reading per segment makes against the reference. It bounds what re-ranking the list
/// (a stronger LM, other weights) could reach with the same search.
public enum OracleErrorRate {
    /// `segments[s]` holds the normalized readings of segment s, in the search's order.
    /// Combinations are tried in that order up to `limit`; past it the count is an upper
    /// bound (only utterances cut into many segments come near it).
    public static func minimumErrors(reference: [String], segments: [[String]], limit: Int = 4096) -> Int {
        let lists = segments.map { $0.isEmpty ? [""] : $0 }
        var choice = [Int](repeating: 0, count: lists.count)
        var best = Int.max
        for _ in 0..<limit {
            let words = zip(lists, choice).flatMap { list, k in list[k].split(separator: " ").map(String.init) }
            best = min(best, EditDistance.align(reference, words).counts.errors)
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
        return best == .max ? reference.count : best
    }
}
