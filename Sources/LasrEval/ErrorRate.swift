/// Edit-distance scoring of a hypothesis against a reference (word or character error rate).
public struct EditCounts: Sendable, Equatable {
    public var substitutions = 0
    public var deletions = 0
    public var insertions = 0
    /// Reference length.
    public var reference = 0

    public init(substitutions: Int = 0, deletions: Int = 0, insertions: Int = 0, reference: Int = 0) {
        self.substitutions = substitutions
        self.deletions = deletions
        self.insertions = insertions
        self.reference = reference
    }

    public var errors: Int { substitutions + deletions + insertions }
    /// Errors per reference item (0 for an empty reference with no insertions, else ≥ 0).
    public var rate: Double { reference == 0 ? (insertions == 0 ? 0 : 1) : Double(errors) / Double(reference) }

    public static func + (a: EditCounts, b: EditCounts) -> EditCounts {
        EditCounts(substitutions: a.substitutions + b.substitutions, deletions: a.deletions + b.deletions,
                   insertions: a.insertions + b.insertions, reference: a.reference + b.reference)
    }
}

/// One step of an edit alignment.
public enum EditOperation: Sendable, Equatable {
    case match(ref: Int, hyp: Int)
    case substitution(ref: Int, hyp: Int)
    case deletion(ref: Int)
    case insertion(hyp: Int)
}

public enum EditDistance {
    /// A minimum-cost alignment (Levenshtein, unit costs); among equal-cost
    /// alignments, substitutions are preferred over a deletion plus an insertion.
    public static func align<T: Equatable>(_ ref: [T], _ hyp: [T]) -> (counts: EditCounts, operations: [EditOperation]) {
        let n = ref.count, m = hyp.count
        var cost = [[Int]](repeating: [Int](repeating: 0, count: m + 1), count: n + 1)
        for i in 0...n { cost[i][0] = i }
        for j in 0...m { cost[0][j] = j }
        if n > 0 && m > 0 {
            for i in 1...n {
                for j in 1...m {
                    let diagonal = cost[i - 1][j - 1] + (ref[i - 1] == hyp[j - 1] ? 0 : 1)
                    cost[i][j] = min(diagonal, cost[i - 1][j] + 1, cost[i][j - 1] + 1)
                }
            }
        }
        var ops: [EditOperation] = []
        var counts = EditCounts(reference: n)
        var i = n, j = m
        while i > 0 || j > 0 {
            if i > 0 && j > 0 && cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] == hyp[j - 1] ? 0 : 1) {
                if ref[i - 1] == hyp[j - 1] {
                    ops.append(.match(ref: i - 1, hyp: j - 1))
                } else {
                    ops.append(.substitution(ref: i - 1, hyp: j - 1)); counts.substitutions += 1
                }
                i -= 1; j -= 1
            } else if i > 0 && cost[i][j] == cost[i - 1][j] + 1 {
                ops.append(.deletion(ref: i - 1)); counts.deletions += 1; i -= 1
            } else {
                ops.append(.insertion(hyp: j - 1)); counts.insertions += 1; j -= 1
            }
        }
        return (counts, ops.reversed())
    }
}
