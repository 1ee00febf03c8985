import Foundation

/// A decoded token with its time.
public struct TranscriptToken: Sendable, Equatable, Codable {
    public var id: Int
    /// The piece as written in the vocabulary (with `▁` for a word start).
    public var piece: String
    /// Encoder frame the token is aligned to (within its segment).
    public var frame: Int
    public var start: Double
    public var end: Double
    /// Attention log-probability of the token.
    public var logProb: Double
}

/// A word with its time span and confidence.
public struct TranscriptWord: Sendable, Equatable, Codable {
    public var text: String
    public var start: Double
    public var end: Double
    /// Geometric mean of the word's token probabilities, in (0, 1].
    public var confidence: Double
}

/// One decoded stretch of audio (at most the segment length).
public struct TranscriptSegment: Sendable {
    public var start: Double
    public var end: Double
    public var text: String
    public var words: [TranscriptWord]
    public var tokens: [TranscriptToken]
    /// The attention matrix, one row per token and a last row for the end step, `T′` columns.
    public var attention: [[Float]]
    /// Seconds from the segment start to encoder frame `j`: `frameOffset + j·frameDuration`.
    public var frameDuration: Double
    public var frameOffset: Double
    /// The hypothesis' ranking score.
    public var score: Double
}

/// Everything lasr knows about one input.
public struct Transcript: Sendable {
    public var source: String
    public var duration: Double
    public var segments: [TranscriptSegment]

    public var text: String { segments.map(\.text).filter { !$0.isEmpty }.joined(separator: " ") }
    public var words: [TranscriptWord] { segments.flatMap(\.words) }
}
