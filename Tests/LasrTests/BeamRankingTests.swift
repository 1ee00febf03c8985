import Testing
@testable import LasrDecoding

@Suite struct BeamRankingTests {
    @Test func topTokensAreTheLargestBestFirstWithTiesByID() {
        let row: [Float] = [0.1, 0.7, -.infinity, 0.7, 0.3, .nan, 0.9, 0.3]
        #expect(BeamRanking.topTokens(row, k: 3) == [6, 1, 3])
        #expect(BeamRanking.topTokens(row, k: 5) == [6, 1, 3, 4, 7])
        // Non-finite values are never proposed, even when k asks for more.
        #expect(BeamRanking.topTokens(row, k: 10) == [6, 1, 3, 4, 7, 0])
        #expect(BeamRanking.topTokens(row, k: 2) { $0 != 6 } == [1, 3])
        #expect(BeamRanking.topTokens(row, k: 0).isEmpty)
    }

    @Test func topTokensAgreeWithAFullSort() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            // Few distinct values, so that ties are common.
            let row = (0..<300).map { _ in Float(Int.random(in: 0..<40, using: &rng)) / 8 }
            let k = Int.random(in: 1...20, using: &rng)
            let sorted = row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }
            #expect(BeamRanking.topTokens(row, k: k) == Array(sorted.prefix(k)))
        }
    }

    @Test func rankedKeepsTheOrderOfProposalOnEqualScores() {
        let candidates = [(id: "a", s: 1.0), (id: "b", s: 2.0), (id: "c", s: 1.0), (id: "d", s: 2.0), (id: "e", s: 0.5)]
        #expect(BeamRanking.ranked(candidates, by: \.s).map(\.id) == ["b", "d", "a", "c", "e"])
        #expect(BeamRanking.ranked(candidates, limit: 3, by: \.s).map(\.id) == ["b", "d", "a"])
    }
}
