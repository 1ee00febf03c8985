import Foundation
import LasrAudio
import LasrCore
import LasrFeatures
import LasrModel

/// The whole native pipeline for one input: audio → segments → log-mel features →
/// encoder → beam search → words with times from the attention alignment.
///
/// A recognizer holds one feature extractor (one FFT plan) and is meant for one
/// thread; make one per thread to decode files in parallel.
public final class Recognizer {
    public let model: LasrModel
    public var options: DecodingOptions
    public var segmenter: Segmenter
    /// Readings kept per segment: above 1, each segment lists the beam's `alternatives`
    /// best ended hypotheses (`TranscriptSegment.alternatives`), for n-best rescoring or
    /// an oracle error rate. The transcript's text is the best one's either way.
    public var alternatives = 1
    /// Polled before each segment of `transcribe(file:)`; once it returns true the
    /// decoding stops with `CancellationError` (a server's client went away).
    public var isCancelled: (() -> Bool)?
    private let extractor: LogMelExtractor

    public init(model: LasrModel, options: DecodingOptions? = nil, segmenter: Segmenter = Segmenter()) {
        self.model = model
        self.options = options ?? DecodingOptions(model.config.decoding, lm: model.config.lm)
        self.segmenter = segmenter
        extractor = LogMelExtractor(config: model.config.features)
    }

    /// Decodes the audio file at `path`, segment by segment as it is read: memory
    /// holds one segment of audio (plus the transcript), not the whole file.
    public func transcribe(file path: String, progress: ((Double) -> Void)? = nil) throws -> Transcript {
        let rate = model.config.features.sampleRate
        var buffer: [Float] = []
        var consumed = 0, expected = 1
        var segments: [TranscriptSegment] = []
        func decode(_ count: Int) {
            let offset = Double(consumed) / Double(rate)
            if let segment = buffer.withUnsafeBufferPointer({
                decodeSegment(UnsafeBufferPointer(rebasing: $0[0..<count]), offset: offset,
                              duration: Double(count) / Double(rate))
            }) {
                segments.append(segment)
            }
            buffer.removeFirst(count)
            consumed += count
            progress?(min(1, Double(consumed) / Double(expected)))
        }
        let warnings = try AudioFile.stream(path, sampleRate: rate, reserve: { expected = max($0, 1) }) { block in
            if isCancelled?() == true { throw CancellationError() }
            buffer += block
            while let cut = buffer.withUnsafeBufferPointer({ segmenter.cut($0, sampleRate: rate) }) { decode(cut) }
        }
        if !buffer.isEmpty { decode(buffer.count) }
        return Transcript(source: path, duration: Double(consumed) / Double(rate), segments: segments, warnings: warnings)
    }

    /// Decodes mono samples at the model's rate. `progress` gets the fraction done after each segment.
    public func transcribe(_ audio: Audio, source: String, progress: ((Double) -> Void)? = nil) -> Transcript {
        precondition(audio.sampleRate == model.config.features.sampleRate)
        let ranges = segmenter.segments(audio.samples, sampleRate: audio.sampleRate)
        var segments: [TranscriptSegment] = []
        for range in ranges {
            let offset = Double(range.lowerBound) / Double(audio.sampleRate)
            let seconds = Double(range.count) / Double(audio.sampleRate)
            if let segment = audio.samples.withUnsafeBufferPointer({
                decodeSegment(UnsafeBufferPointer(rebasing: $0[range]), offset: offset, duration: seconds)
            }) {
                segments.append(segment)
            }
            progress?(Double(range.upperBound) / Double(max(audio.samples.count, 1)))
        }
        return Transcript(source: source, duration: audio.duration, segments: segments, warnings: audio.warnings)
    }

    /// Decodes one segment of at most the segmenter's length; nil if it is too short for one frame.
    public func decodeSegment(_ samples: UnsafeBufferPointer<Float>, offset: Double, duration: Double) -> TranscriptSegment? {
        let features = extractor.compute(samples)
        guard features.rows > 0 else { return nil }
        let encoded = model.encoder(features)
        let nBest = BeamSearch(model: model, options: options).decode(encoded, nBest: max(1, alternatives))
        guard let best = nBest.first else { return nil }
        var segment = makeSegment(best, offset: offset, duration: duration)
        if alternatives > 1 {
            segment.alternatives = nBest.map { .init(text: model.vocabulary.decode($0.tokens), score: $0.score) }
        }
        return segment
    }

    /// Turns a hypothesis into tokens and words with absolute times.
    func makeSegment(_ hyp: Hypothesis, offset: Double, duration: Double) -> TranscriptSegment {
        let vocab = model.vocabulary
        let stride = model.frameDuration
        // Encoder frame j is centered on feature frame 4j, whose window is centered win/2 after its start.
        let frameOffset = Double(model.config.features.winLength) / 2 / Double(model.config.features.sampleRate)
        let lag = model.config.timestamps.attentionLag
        func time(_ frame: Int) -> Double { min(duration, max(0, frameOffset + Double(frame) * stride - lag)) + offset }

        let tokenRows = Array(hyp.alignment.prefix(hyp.tokens.count))
        let path = AttentionAligner.monotonicPath(tokenRows)
        // How far a token reaches back before its peak (calibrated with the lag): it bounds
        // the span of a token after a pause or a slow onset (see AttentionAligner.spans).
        let maxFrames = max(1, Int((model.config.timestamps.tokenSpan / stride).rounded()))
        let spans = AttentionAligner.spans(path, maxFrames: maxFrames)
        var tokens: [TranscriptToken] = []
        for (i, id) in hyp.tokens.enumerated() {
            tokens.append(TranscriptToken(id: id, piece: vocab.pieces[id], frame: path[i],
                                          start: time(spans[i].first), end: time(spans[i].last),
                                          logProb: hyp.tokenLogProbs[i]))
        }
        for i in tokens.indices { tokens[i].start = max(offset, tokens[i].start); tokens[i].end = min(offset + duration, tokens[i].end) }

        var words: [TranscriptWord] = []
        var current: [TranscriptToken] = []
        func flush() {
            guard !current.isEmpty else { return }
            let text = vocab.decode(current.map(\.id))
            if !text.isEmpty {
                let meanLogProb = current.map(\.logProb).reduce(0, +) / Double(current.count)
                words.append(TranscriptWord(text: text, start: current.first!.start, end: current.last!.end,
                                            confidence: Foundation.exp(meanLogProb)))
            }
            current = []
        }
        for token in tokens where vocab.isPiece(token.id) {
            if vocab.startsWord(token.id) { flush() }
            current.append(token)
        }
        flush()
        // Words do not overlap: a word ends no later than the next begins.
        for i in words.indices.dropLast() where words[i].end > words[i + 1].start {
            words[i].end = max(words[i].start, words[i + 1].start)
        }
        return TranscriptSegment(start: offset, end: offset + duration, text: vocab.decode(hyp.tokens),
                                 words: words, tokens: tokens, attention: hyp.alignment,
                                 frameDuration: stride, frameOffset: frameOffset, score: hyp.score)
    }
}
