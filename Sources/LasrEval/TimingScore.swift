/// Word timestamp accuracy: hypothesis words are matched to reference words by the
/// edit alignment of the two (normalized) word sequences; for each exact match, the
/// start and end differences (hypothesis − reference, seconds) are collected.
public struct TimingErrors: Sendable {
    /// Signed differences: positive where the hypothesis word starts or ends late.
    public var signedStart: [Double] = []
    public var signedEnd: [Double] = []

    /// Absolute differences, the usual accuracy figures.
    public var start: [Double] { signedStart.map(abs) }
    public var end: [Double] { signedEnd.map(abs) }

    public init() {}

    public mutating func add(reference: [(start: Double, end: Double, word: String)],
                             hypothesis: [(start: Double, end: Double, word: String)]) {
        let ref = reference.map { TextNormalizer.normalize($0.word) }
        let hyp = hypothesis.map { TextNormalizer.normalize($0.word) }
        for op in EditDistance.align(ref, hyp).operations {
            if case .match(let r, let h) = op {
                signedStart.append(hypothesis[h].start - reference[r].start)
                signedEnd.append(hypothesis[h].end - reference[r].end)
            }
        }
    }

    public mutating func merge(_ other: TimingErrors) {
        signedStart += other.signedStart
        signedEnd += other.signedEnd
    }

    /// The q-quantile (0…1) of `values`, by linear interpolation between order statistics.
    public static func quantile(_ values: [Double], _ q: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let position = q * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down)), upper = min(lower + 1, sorted.count - 1)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - Double(lower))
    }

    /// The figures `lasr eval` reports, in milliseconds; nil without matched words.
    public var summary: TimingSummary? {
        guard !signedStart.isEmpty else { return nil }
        func ms(_ values: [Double], _ q: Double) -> Double { 1000 * (Self.quantile(values, q) ?? 0) }
        let start = self.start, end = self.end
        return TimingSummary(matchedWords: signedStart.count,
                             startMedianMs: ms(start, 0.5), startP90Ms: ms(start, 0.9),
                             endMedianMs: ms(end, 0.5), endP90Ms: ms(end, 0.9),
                             startBiasMs: ms(signedStart, 0.5), endBiasMs: ms(signedEnd, 0.5))
    }
}

/// Word-timing accuracy in milliseconds: medians and 90th percentiles of |error|, and
/// the bias (median signed error, positive when late).
public struct TimingSummary: Sendable, Equatable, Codable {
    public var matchedWords: Int
    public var startMedianMs: Double, startP90Ms: Double
    public var endMedianMs: Double, endP90Ms: Double
    public var startBiasMs: Double, endBiasMs: Double

    enum CodingKeys: String, CodingKey {
        case matchedWords = "matched_words", startMedianMs = "start_median_ms", startP90Ms = "start_p90_ms"
        case endMedianMs = "end_median_ms", endP90Ms = "end_p90_ms"
        case startBiasMs = "start_bias_ms", endBiasMs = "end_bias_ms"
    }
}
