import LasrEval
import Testing

@Suite struct ErrorRateTests {
    func counts(_ ref: String, _ hyp: String) -> EditCounts {
        EditDistance.align(ref.split(separator: " ").map(String.init), hyp.split(separator: " ").map(String.init)).counts
    }

    @Test func oracleTakesTheClosestReadingOfEachSegment() {
        let ref = "the cat sat on the mat".split(separator: " ").map(String.init)
        // The best readings are second in the first segment and third in the second.
        let segments = [["the bat sat", "the cat sat", "a cat"], ["in a mat", "on a mat", "on the mat"]]
        #expect(OracleErrorRate.closest(reference: ref, segments: segments) == EditCounts(reference: 6))
        #expect(OracleErrorRate.closest(reference: ref, segments: [["the bat sat"], ["in a mat"]]).substitutions == 3)
        // Past the limit, only the first combinations count: an upper bound.
        #expect(OracleErrorRate.closest(reference: ref, segments: segments, limit: 2).errors == 2)
        #expect(OracleErrorRate.closest(reference: ref, segments: []) == EditCounts(deletions: 6, reference: 6))
        #expect(OracleErrorRate.closest(reference: ref, segments: [[]]).deletions == 6)
    }

    @Test func identical() {
        let c = counts("the cat sat", "the cat sat")
        #expect(c == EditCounts(substitutions: 0, deletions: 0, insertions: 0, reference: 3))
        #expect(c.rate == 0)
    }

    @Test func allDeleted() {
        let c = counts("the cat sat on the mat", "")
        #expect(c == EditCounts(substitutions: 0, deletions: 6, insertions: 0, reference: 6))
        #expect(c.rate == 1)
    }

    @Test func insertionsOnly() {
        let c = counts("hello world", "oh hello big world again")
        #expect(c == EditCounts(substitutions: 0, deletions: 0, insertions: 3, reference: 2))
        #expect(c.rate == 1.5)
    }

    @Test func mixed() {
        // ref: a b c d e f ; hyp: a x c e f g → b→x (S), d deleted (D), g inserted (I): 3 errors / 6.
        let c = counts("a b c d e f", "a x c e f g")
        #expect(c == EditCounts(substitutions: 1, deletions: 1, insertions: 1, reference: 6))
        #expect(c.rate == 0.5)
        let chars = EditDistance.align(Array("kitten"), Array("sitting")).counts
        #expect(chars.errors == 3)  // the classic: k→s, e→i, +g
    }

    @Test func quantiles() {
        #expect(TimingErrors.quantile([0.3, 0.1, 0.2], 0.5) == 0.2)
        #expect(abs(TimingErrors.quantile([0, 10], 0.9)! - 9) < 1e-12)
        #expect(TimingErrors.quantile([], 0.5) == nil)
    }

    @Test func timingErrorsUseMatchedWordsOnly() throws {
        var t = TimingErrors()
        t.add(reference: [(0.0, 0.5, "the"), (0.5, 1.0, "cat"), (1.0, 1.6, "sat")],
              hypothesis: [(0.04, 0.48, "the"), (0.5, 0.9, "hat"), (1.1, 1.5, "sat")])
        #expect(t.start.count == 2)
        #expect(abs(t.start[0] - 0.04) < 1e-12 && abs(t.start[1] - 0.1) < 1e-12)
        #expect(abs(t.end[0] - 0.02) < 1e-12 && abs(t.end[1] - 0.1) < 1e-12)
        // Signed: the hypothesis "the" ends early, "sat" starts late.
        #expect(abs(t.signedEnd[0] + 0.02) < 1e-12 && abs(t.signedStart[1] - 0.1) < 1e-12)
        let summary = try #require(t.summary)
        #expect(summary.matchedWords == 2)
        #expect(abs(summary.startMedianMs - 70) < 1e-9 && abs(summary.startBiasMs - 70) < 1e-9)
        #expect(abs(summary.endMedianMs - 60) < 1e-9 && abs(summary.endBiasMs + 60) < 1e-9)
        #expect(TimingErrors().summary == nil)
    }
}

@Suite struct TextNormalizerTests {
    /// Expected outputs computed by the recipe's `lasr_train.text.normalize_text`.
    @Test(arguments: [
        ("Mr. Smith's 1,234 boys' toys — in 1984, the 21st-century",
         "mr smith's one thousand two hundred thirty four boys toys in nineteen eighty four the twenty first century"),
        ("It cost $3.50 on the 2nd of May, 2015.", "it cost three point five zero on the second of may twenty fifteen"),
        ("'Tis the \"Boys'\" co-op: rock'n'roll 100%!", "tis the boys co op rock'n'roll one hundred"),
        ("HE SAID 7 AND 12 AND 1900", "he said seven and twelve and nineteen hundred"),
        ("The 1990s, 2009 and 10,000.", "the nineteen ninety s two thousand nine and ten thousand"),
    ])
    func matchesTheRecipe(input: String, expected: String) {
        #expect(TextNormalizer.normalize(input) == expected)
    }
}
