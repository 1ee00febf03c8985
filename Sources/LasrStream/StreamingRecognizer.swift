import Foundation
import LasrAudio
import LasrCore
import LasrDecoding
import LasrModel

/// A decoded utterance of a stream; times are seconds from the stream start.
public struct StreamResult: Sendable {
    public var isPartial: Bool
    public var start: Double
    public var end: Double
    public var text: String
    public var words: [TranscriptWord]

    private struct Line: Encodable {
        struct Word: Encodable { let word: String; let start: Double; let end: Double; let confidence: Double }
        let type: String
        let start: Double
        let end: Double
        let text: String
        let words: [Word]
    }

    /// The result as one line of `lasr stream --json` (without the newline): type
    /// (`partial` or `final`), start, end, text and words with times and confidence;
    /// times to the millisecond. `lasr serve` sends the same lines over its WebSocket.
    public func jsonLine() -> String {
        func r(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
        let value = Line(type: isPartial ? "partial" : "final", start: r(start), end: r(end), text: text,
                         words: words.map { .init(word: $0.text, start: r($0.start), end: r($0.end),
                                                  confidence: (($0.confidence * 1e4).rounded()) / 1e4) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// Live recognition: samples go in as they arrive (any rate and channel count), the
/// endpointer cuts them into utterances, and a decoder thread decodes each one as
/// soon as its end is detected while the caller keeps feeding — reading never waits
/// for decoding. Results come back in order through `onResult`, on the decoder thread.
///
/// With `partialInterval`, the open utterance is also re-decoded every that many
/// seconds of new audio, when the decoder has nothing final to do, and reported as a
/// partial result.
///
/// The endpoint waits `trailingSilence` (0.5 s) after the last speech, but the audio an
/// utterance carries ends `postRoll` (0.2 s) after it. So after `foreseeAfter` (0.3 s) of
/// silence an idle decoder starts on the utterance the endpoint would emit
/// (`Endpointer.closingUtterance`), and at the endpoint its result is reported at once
/// instead of the decoding starting only then; where speech resumes first, that
/// speculative result is dropped and the longer utterance decoded at its own end. The
/// final results are the same either way, only earlier (docs/benchmarks.md, "stream").
public final class StreamingRecognizer: @unchecked Sendable {
    /// Decodes one utterance (mono samples at the model's rate); runs on the decoder thread only.
    private let decode: ([Float]) -> Transcript
    private let endpointer: Endpointer
    private let resampler: Resampler
    private let inputChannels: Int
    private let partialInterval: Double?
    private let onResult: @Sendable (StreamResult) -> Void

    private enum Job {
        case final(Utterance), partial(Utterance), speculative(Utterance)
        var isPartial: Bool { if case .partial = self { true } else { false } }
        var speculativeSpan: Span? { if case .speculative(let u) = self { Span(u) } else { nil } }
    }
    /// What identifies an utterance of this stream: the same span has the same audio.
    private struct Span: Equatable {
        let audioStart: Double, speechStart: Double, speechEnd: Double, samples: Int
        init(_ u: Utterance) {
            audioStart = u.audioStart; speechStart = u.speechStart; speechEnd = u.speechEnd; samples = u.samples.count
        }
    }
    private let condition = NSCondition()
    private var jobs: [Job] = []
    /// The closing utterance last handed to the decoder, while it is still the one the
    /// endpoint would emit (read and written by the feeding thread).
    private var speculatedSpan: Span?
    /// The decoded speculative utterance, until its final result is reported or speech resumes.
    private var speculation: (span: Span, transcript: Transcript)?
    private var closed = false
    private var busy = false
    private var decoderExited = false
    private var lastPartialAt = 0.0
    private var decoder: Thread?
    private var mono: [Float] = []
    private var resampled: [Float] = []

    /// A stream decoded by a native model.
    public convenience init(model: LasrModel, options: DecodingOptions, inputRate: Int, inputChannels: Int,
                            endpointer config: EndpointerConfig = EndpointerConfig(), partialInterval: Double? = nil,
                            onResult: @escaping @Sendable (StreamResult) -> Void) {
        let rate = model.config.features.sampleRate
        let recognizer = Recognizer(model: model, options: options,
                                    segmenter: Segmenter(maxSeconds: max(config.maxUtterance + 1, 2)))
        self.init(sampleRate: rate, decode: { recognizer.transcribe(Audio(samples: $0, sampleRate: rate), source: "stream") },
                  inputRate: inputRate, inputChannels: inputChannels, endpointer: config,
                  partialInterval: partialInterval, onResult: onResult)
    }

    /// A stream decoded by a Whisper model: each utterance goes through Whisper's
    /// window loop (one window for utterances up to 30 s).
    public convenience init(whisper model: WhisperModel, options: WhisperOptions, inputRate: Int, inputChannels: Int,
                            endpointer config: EndpointerConfig = EndpointerConfig(), partialInterval: Double? = nil,
                            onResult: @escaping @Sendable (StreamResult) -> Void) {
        let recognizer = WhisperRecognizer(model: model, options: options)
        self.init(sampleRate: model.config.features.sampleRate, decode: { recognizer.transcribe($0, source: "stream") },
                  inputRate: inputRate, inputChannels: inputChannels, endpointer: config,
                  partialInterval: partialInterval, onResult: onResult)
    }

    private init(sampleRate rate: Int, decode: @escaping ([Float]) -> Transcript, inputRate: Int, inputChannels: Int,
                 endpointer config: EndpointerConfig, partialInterval: Double?,
                 onResult: @escaping @Sendable (StreamResult) -> Void) {
        self.decode = decode
        endpointer = Endpointer(config: config, sampleRate: rate)
        resampler = Resampler(inputRate: inputRate, outputRate: rate)
        self.inputChannels = inputChannels
        self.partialInterval = partialInterval
        self.onResult = onResult
        // The thread holds the recognizer until its loop ends, after `finish`.
        let thread = Thread { self.decodeLoop() }
        thread.stackSize = 8 << 20
        decoder = thread
        thread.start()
    }

    /// Feeds interleaved samples at the input rate.
    public func feed(_ interleaved: [Float]) {
        let frames = interleaved.count / inputChannels
        if mono.count < frames { mono = [Float](repeating: 0, count: frames) }
        Downmix.mono(interleaved, channels: inputChannels, frames: frames, into: &mono)
        resampled.removeAll(keepingCapacity: true)
        mono.withUnsafeBufferPointer { resampler.process(UnsafeBufferPointer(rebasing: $0[0..<frames]), into: &resampled) }
        enqueue(endpointer.push(resampled))
    }

    /// Ends the stream: flushes the open utterance, waits until everything is decoded.
    public func finish() {
        resampled.removeAll(keepingCapacity: true)
        resampler.finish(into: &resampled)
        var done = endpointer.push(resampled)
        done += endpointer.finish()
        enqueue(done)
        condition.lock()
        closed = true
        condition.broadcast()
        while !decoderExited { condition.wait() }
        condition.unlock()
    }

    /// Final results so far, how many of them were decoded ahead of their endpoint (the
    /// speculative decoding above), and how many speculative decodings ran in all (those
    /// not foreseen were dropped as speech resumed): `lasr bench --stage stream` reports them.
    public var decodings: (finals: Int, foreseen: Int, speculative: Int) {
        condition.lock(); defer { condition.unlock() }
        return (finalCount, foreseenCount, speculativeCount)
    }
    private var finalCount = 0, foreseenCount = 0, speculativeCount = 0

    private var idle: Bool {
        condition.lock(); defer { condition.unlock() }
        return jobs.isEmpty && !busy
    }

    /// Utterances waiting to be decoded (a caller feeding faster than real time can wait on this).
    public var pending: Int {
        condition.lock(); defer { condition.unlock() }
        return jobs.count + (busy ? 1 : 0)
    }

    private func enqueue(_ utterances: [Utterance]) {
        var speculate: Utterance?
        if let closing = endpointer.closingSpan {
            // Only an idle decoder speculates: a busy one would only delay what it has to do.
            if speculatedSpan.map({ ($0.audioStart, $0.speechEnd) != closing }) ?? true, utterances.isEmpty, idle {
                speculate = endpointer.closingUtterance
                speculatedSpan = speculate.map(Span.init)
            }
        } else {
            speculatedSpan = nil
        }
        condition.lock()
        // A partial result is only worth decoding if nothing newer is waiting.
        if !utterances.isEmpty || speculate != nil { jobs.removeAll { $0.isPartial } }
        // A speculative job not yet started goes once speech resumes, or once its utterance
        // closes (the final job then decodes it).
        jobs.removeAll { job in job.speculativeSpan.map { $0 != speculatedSpan } ?? false }
        jobs += utterances.map { .final($0) }
        if let speculate { jobs.append(.speculative(speculate)) }
        // (Not in the trailing silence: the speculative result already reads all the speech.)
        if let interval = partialInterval, utterances.isEmpty, speculatedSpan == nil, let open = endpointer.openUtterance,
           endpointer.elapsed - lastPartialAt >= interval, jobs.isEmpty, !busy {
            lastPartialAt = endpointer.elapsed
            jobs.append(.partial(open))
        }
        if utterances.count > 0 { lastPartialAt = endpointer.elapsed }
        condition.broadcast()
        condition.unlock()
    }

    private func decodeLoop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !closed { condition.wait() }
            if jobs.isEmpty && closed {
                decoderExited = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            busy = true
            condition.unlock()

            let (utterance, partial): (Utterance, Bool)
            switch job {
            case .final(let u): (utterance, partial) = (u, false)
            case .partial(let u): (utterance, partial) = (u, true)
            case .speculative(let u):
                let transcript = decode(u.samples)
                condition.lock()
                speculation = (Span(u), transcript)
                speculativeCount += 1
                busy = false
                condition.broadcast()
                condition.unlock()
                continue
            }
            condition.lock()
            let foreseen = partial ? nil : speculation.flatMap { $0.span == Span(utterance) ? $0.transcript : nil }
            if !partial {
                speculation = nil
                finalCount += 1
                if foreseen != nil { foreseenCount += 1 }
            }
            condition.unlock()
            let transcript = foreseen ?? decode(utterance.samples)
            let words = transcript.words.map {
                TranscriptWord(text: $0.text, start: $0.start + utterance.audioStart, end: $0.end + utterance.audioStart,
                               confidence: $0.confidence)
            }
            onResult(StreamResult(isPartial: partial, start: utterance.speechStart, end: utterance.speechEnd,
                                  text: transcript.text, words: words))
            condition.lock()
            busy = false
            condition.broadcast()
            condition.unlock()
        }
    }
}
