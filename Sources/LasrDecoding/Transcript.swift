import Foundation
import LasrAudio

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

    public init(id: Int, piece: String, frame: Int, start: Double, end: Double, logProb: Double) {
        self.id = id
        self.piece = piece
        self.frame = frame
        self.start = start
        self.end = end
        self.logProb = logProb
    }
}

/// A word with its time span and confidence.
public struct TranscriptWord: Sendable, Equatable, Codable {
    public var text: String
    public var start: Double
    public var end: Double
    /// Geometric mean of the word's token probabilities, in (0, 1].
    public var confidence: Double

    public init(text: String, start: Double, end: Double, confidence: Double) {
        self.text = text
        self.start = start
        self.end = end
        self.confidence = confidence
    }
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
    /// Whisper's probability of its no-speech token at the start of this segment's
    /// window; nil for native models, which have none.
    public var noSpeechProbability: Double?
    /// The sampling temperature the segment's window was decoded at (Whisper's
    /// fallback); nil for native models, which decode by beam search alone.
    public var temperature: Double?
    /// The search's best readings of this segment, best first (the first is `text`), when
    /// the recognizer was asked for more than one (`Recognizer.alternatives`); else nil.
    public var alternatives: [Alternative]?

    /// One reading of a segment from the beam's n-best list.
    public struct Alternative: Sendable, Equatable {
        public var text: String
        /// The hypothesis' ranking score, as `score` is for the best.
        public var score: Double

        public init(text: String, score: Double) {
            self.text = text
            self.score = score
        }
    }

    public init(start: Double, end: Double, text: String, words: [TranscriptWord], tokens: [TranscriptToken],
                attention: [[Float]], frameDuration: Double, frameOffset: Double, score: Double) {
        self.start = start
        self.end = end
        self.text = text
        self.words = words
        self.tokens = tokens
        self.attention = attention
        self.frameDuration = frameDuration
        self.frameOffset = frameOffset
        self.score = score
    }
}

/// Everything lasr knows about one input.
public struct Transcript: Sendable {
    public var source: String
    public var duration: Double
    public var segments: [TranscriptSegment]
    /// What of the input could not be decoded (a truncated or damaged file): the
    /// transcript is of the rest.
    public var warnings: [AudioWarning]

    public init(source: String, duration: Double, segments: [TranscriptSegment], warnings: [AudioWarning] = []) {
        self.source = source
        self.duration = duration
        self.segments = segments
        self.warnings = warnings
    }

    public var text: String { segments.map(\.text).filter { !$0.isEmpty }.joined(separator: " ") }
    public var words: [TranscriptWord] { segments.flatMap(\.words) }
}

/// Anything that turns an audio file into a transcript: the native `Recognizer`
/// and the `WhisperRecognizer`. One instance serves one thread.
public protocol FileTranscriber: AnyObject {
    /// Sample rate the model reads; `transcribe(samples:source:)` takes mono audio at it.
    var sampleRate: Int { get }
    /// Polled during decoding; true stops it (`transcribe(file:)` then throws `CancellationError`).
    var isCancelled: (() -> Bool)? { get set }
    func transcribe(file path: String, progress: ((Double) -> Void)?) throws -> Transcript
    /// Mono samples at `sampleRate`, already in memory.
    func transcribe(samples: [Float], source: String) -> Transcript
}

extension Recognizer: FileTranscriber {
    public var sampleRate: Int { model.config.features.sampleRate }
    public func transcribe(samples: [Float], source: String) -> Transcript {
        transcribe(Audio(samples: samples, sampleRate: sampleRate), source: source)
    }
}

extension WhisperRecognizer: FileTranscriber {
    public var sampleRate: Int { model.config.features.sampleRate }
    public func transcribe(samples: [Float], source: String) -> Transcript { transcribe(samples, source: source) }
}
