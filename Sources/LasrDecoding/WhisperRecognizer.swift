import CZlib
import Foundation
import LasrAudio
import LasrCore
import LasrFeatures
import LasrModel
import LasrNN

/// Options of Whisper decoding; the defaults are the model config's `decoding`
/// block, which holds openai-whisper's own defaults, and its `timestamps` block.
public struct WhisperOptions: Sendable {
    public var beam: Int
    /// Tried in order while a window's result fails the guards below; the first is
    /// decoded with beam search (when 0), the others by sampling `bestOf` candidates.
    public var temperatures: [Double]
    public var bestOf = 5
    public var compressionRatioThreshold: Double?
    public var logProbThreshold: Double?
    public var noSpeechThreshold: Double?
    /// Feed the previous window's text as a prompt (reset after a hot fallback).
    public var conditionOnPreviousText = true
    /// Text tokens before the first window (openai-whisper's `initial_prompt`, OpenAI's
    /// `prompt`): spellings, names and style for the model to follow. It stays in the
    /// context of later windows while `conditionOnPreviousText` keeps the history.
    public var prompt: [Int] = []
    /// Word times from the cross-attention alignment (DTW); costs one decoder pass per window.
    public var wordTimestamps = true
    /// Language code for multilingual models (nil: English).
    public var language: String?
    /// Seed of the sampling at temperatures above 0.
    public var seed: UInt64 = 0
    /// How the audio is padded to whole 30 s windows.
    public var padding: Padding = .openai
    /// Seconds subtracted from every word and token time (the config's
    /// `timestamps.attention_lag`): the checkpoint's constant offset of the
    /// alignment heads' times behind the speech, negative where they come early.
    /// It moves times only; the decoding and the seek do not depend on it.
    public var attentionLag = 0.0

    public enum Padding: String, Sendable, CaseIterable {
        /// openai-whisper's `transcribe`: 30 s of digital silence appended to the
        /// waveform before the log-mel, as Whisper saw short audio in training.
        case openai
        /// faster-whisper's: one hop of silence, and windows past the end filled with
        /// the value 0 in the normalized log-mel domain.
        case fasterWhisper = "faster-whisper"
    }

    public init(_ config: WhisperConfig) {
        let decoding = config.decoding
        beam = decoding.beam
        temperatures = decoding.temperatures
        compressionRatioThreshold = decoding.compressionRatioThreshold
        logProbThreshold = decoding.logProbThreshold
        noSpeechThreshold = decoding.noSpeechThreshold
        attentionLag = config.timestamps.attentionLag
    }
}

/// Whisper's transcription loop over 30 s windows with seek, as openai-whisper's
/// `transcribe` defines it: timestamp tokens split each window into segments and
/// tell where the next window starts; a window whose text is too repetitive
/// (compression ratio) or too unlikely (average log-probability) is decoded again
/// at the next temperature; a window the model calls silent is skipped. Words get
/// times from the cross-attention of the alignment heads by dynamic time warping.
public final class WhisperRecognizer {
    public let model: WhisperModel
    public var options: WhisperOptions
    /// Polled before each 30 s window; once it returns true the decoding stops, and
    /// `transcribe(file:)` throws `CancellationError` (a server's client went away).
    public var isCancelled: (() -> Bool)?
    private let extractor: LogMelExtractor
    private var random: SplitMix64
    let filter: WhisperLogitFilter

    /// Seconds per timestamp token.
    static let timePrecision = 0.02

    public init(model: WhisperModel, options: WhisperOptions? = nil) {
        self.model = model
        self.options = options ?? WhisperOptions(model.config)
        extractor = LogMelExtractor(config: model.config.features)
        random = SplitMix64(seed: self.options.seed)
        filter = WhisperLogitFilter(vocabulary: model.config.vocabulary, spaceToken: model.tokenizer.spaceToken)
    }

    var vocab: WhisperConfig.Vocabulary { model.config.vocabulary }
    var dims: WhisperDimensions { model.config.whisper }

    /// Decodes the audio file at `path` (resampled to 16 kHz mono).
    public func transcribe(file path: String, progress: ((Double) -> Void)? = nil) throws -> Transcript {
        let audio = try AudioFile.load(path, sampleRate: model.config.features.sampleRate)
        var transcript = transcribe(audio.samples, source: path, progress: progress)
        if isCancelled?() == true { throw CancellationError() }
        transcript.warnings = audio.warnings
        return transcript
    }

    /// The start tokens of every window: start of transcript, then language and task for a multilingual model.
    var startSequence: [Int] {
        var seq = [vocab.startOfTranscript]
        if !vocab.englishOnly, let first = vocab.firstLanguage {
            let index = vocab.languages.firstIndex(of: options.language ?? "en") ?? 0
            seq += [first + index, vocab.transcribe]
        }
        return seq
    }

    public func transcribe(_ samples: [Float], source: String, progress: ((Double) -> Void)? = nil) -> Transcript {
        // Every file samples from the seed, so its transcript does not depend on
        // which files this recognizer decoded before (`--jobs` deals them out).
        random = SplitMix64(seed: options.seed)
        let windowFrames = dims.melFrames
        let rate = Double(model.config.features.sampleRate)
        let hop = model.config.features.hopLength
        let mel: Matrix
        let contentFrames: Int
        switch options.padding {
        case .openai:
            // 30 s of silence after the audio before the whole log-mel is computed:
            // the last window ends in the features of silence, as in training, and
            // the dynamic-range clamp sees that silence too.
            mel = extractor.compute(samples + [Float](repeating: 0, count: windowFrames * hop))
            contentFrames = max(0, mel.rows - windowFrames)
        case .fasterWhisper:
            // One hop of silence; a window that reaches past the audio is filled with 0.
            let computed = extractor.compute(samples + [Float](repeating: 0, count: hop))
            contentFrames = max(0, computed.rows - 1)
            var extended = Matrix(rows: computed.rows + windowFrames, cols: dims.nMels)
            extended.data.replaceSubrange(0..<computed.data.count, with: computed.data)
            mel = extended
        }
        let framesPerSecond = rate / Double(hop)
        let duration = Double(samples.count) / rate
        var seek = 0
        var segments: [TranscriptSegment] = []
        var history = options.prompt
        var promptResetSince = 0
        while seek < contentFrames, isCancelled?() != true {
            let windowSize = min(windowFrames, contentFrames - seek)
            let timeOffset = Double(seek) / framesPerSecond
            var window = Matrix(rows: windowFrames, cols: dims.nMels)
            window.data.withUnsafeMutableBufferPointer { w in
                mel.data.withUnsafeBufferPointer { m in
                    w.baseAddress!.update(from: m.baseAddress! + seek * dims.nMels, count: windowFrames * dims.nMels)
                }
            }
            let encoded = model.network.encoder.encode(window)
            let audio = model.network.decoder.audioContext(encoded)
            let prompt = Array(history[promptResetSince...])
            let result = decodeWithFallback(audio: audio, prompt: prompt)
            if let threshold = options.noSpeechThreshold, result.noSpeechProbability > threshold,
               !(options.logProbThreshold.map { result.averageLogProb > $0 } ?? false) {
                seek += windowSize
                progress?(min(1, Double(seek) / Double(max(contentFrames, 1))))
                continue
            }
            let tokens = result.tokens
            var windowSegments: [(start: Double, end: Double, tokens: [Int])] = []
            let isTimestamp = tokens.map { $0 >= vocab.timestampBegin }
            let singleTimestampEnding = tokens.count >= 2 && !isTimestamp[tokens.count - 2] && isTimestamp[tokens.count - 1]
                || (tokens.count == 1 && isTimestamp[0])
            var slices = (1..<max(tokens.count, 1)).filter { isTimestamp[$0 - 1] && isTimestamp[$0] }
            var nextSeek = seek + windowSize
            if !slices.isEmpty {
                if singleTimestampEnding { slices.append(tokens.count) }
                var last = 0
                for cut in slices {
                    let piece = Array(tokens[last..<cut])
                    let startPos = piece.first! - vocab.timestampBegin, endPos = piece.last! - vocab.timestampBegin
                    windowSegments.append((timeOffset + Double(startPos) * Self.timePrecision,
                                           timeOffset + Double(endPos) * Self.timePrecision, piece))
                    last = cut
                }
                if !singleTimestampEnding {
                    let lastPos = tokens[last - 1] - vocab.timestampBegin
                    nextSeek = seek + lastPos * 2  // one timestamp step is two mel frames
                }
            } else {
                var duration = Double(windowSize) / framesPerSecond
                if let lastStamp = tokens.last(where: { $0 >= vocab.timestampBegin }), lastStamp != vocab.timestampBegin {
                    duration = Double(lastStamp - vocab.timestampBegin) * Self.timePrecision
                }
                windowSegments.append((timeOffset, timeOffset + duration, tokens))
            }
            let windowEnd = timeOffset + Double(windowSize) / framesPerSecond
            var made: [TranscriptSegment] = []
            var madeTokens: [[Int]] = []
            for piece in windowSegments {
                let text = model.tokenizer.decode(piece.tokens).trimmingCharacters(in: .whitespaces)
                guard !text.isEmpty else { continue }
                let start = min(piece.start, windowEnd)
                var segment = TranscriptSegment(start: start, end: max(start, min(piece.end, windowEnd)), text: text, words: [],
                                                tokens: [], attention: [], frameDuration: 2 / framesPerSecond,
                                                frameOffset: timeOffset - start, score: result.averageLogProb)
                segment.noSpeechProbability = result.noSpeechProbability
                segment.temperature = result.temperature
                made.append(segment)
                madeTokens.append(piece.tokens)
            }
            if options.wordTimestamps, !made.isEmpty {
                let rawLastEnd = addWordTimes(&made, windowTokens: madeTokens, audio: audio, windowFrames: windowSize,
                                              timeOffset: timeOffset, windowEnd: windowEnd,
                                              bounds: Self.wordBounds(after: segments, windowEnd: windowEnd, duration: duration))
                // The seek follows the alignment itself, not the calibrated times, so the
                // attention lag never changes what is decoded.
                if !singleTimestampEnding, let lastEnd = rawLastEnd, lastEnd > timeOffset {
                    nextSeek = Int((lastEnd * framesPerSecond).rounded())
                }
            }
            segments += made
            history += tokens
            if !options.conditionOnPreviousText || result.temperature > 0.5 { promptResetSince = history.count }
            // Never stand still: a window always moves the seek forward.
            seek = max(nextSeek, seek + 1)
            progress?(min(1, Double(seek) / Double(max(contentFrames, 1))))
        }
        return Transcript(source: source, duration: duration, segments: segments)
    }

    // MARK: - One window

    struct WindowResult {
        var tokens: [Int]
        var averageLogProb: Double
        var noSpeechProbability: Double
        var temperature: Double
        var compressionRatio: Double
    }

    func decodeWithFallback(audio: WhisperDecoder.AudioContext, prompt: [Int]) -> WindowResult {
        var result: WindowResult?
        for temperature in options.temperatures {
            let r = decodeWindow(audio: audio, prompt: prompt, temperature: temperature)
            result = r
            var needsFallback = false
            if let limit = options.compressionRatioThreshold, r.compressionRatio > limit { needsFallback = true }
            if let limit = options.logProbThreshold, r.averageLogProb < limit { needsFallback = true }
            if let limit = options.noSpeechThreshold, r.noSpeechProbability > limit { needsFallback = false }
            if !needsFallback { break }
        }
        return result!
    }

    /// Beam search at temperature 0, else `bestOf` samples; both rank finished
    /// sequences by sum of log-probabilities over length (openai-whisper's default ranker).
    func decodeWindow(audio: WhisperDecoder.AudioContext, prompt: [Int], temperature: Double) -> WindowResult {
        let decoder = model.network.decoder
        var initial: [Int] = []
        let maxPrompt = dims.nTextCtx / 2 - 1
        if !prompt.isEmpty { initial = [vocab.startOfPrevious] + prompt.suffix(maxPrompt) }
        let sotIndex = initial.count
        initial += startSequence
        let sampleBegin = initial.count
        let sampleLength = dims.nTextCtx / 2
        let maxTotal = min(dims.nTextCtx, sampleBegin + sampleLength)

        // The prompt once; every beam or sample continues from a copy of its cache.
        let base = decoder.makeCache()
        var none: WhisperDecoder.CrossAttention? = nil
        let promptLogits = decoder.forward([(initial, base)], audio: audio, logitRows: [sotIndex, initial.count - 1],
                                           crossAttention: &none)
        var noSpeech = 0.0
        if let id = vocab.noSpeech {
            var row = promptLogits.row(0)
            row.withUnsafeMutableBufferPointer { Activations.softmax($0.baseAddress!, count: $0.count) }
            noSpeech = Double(row[id])
        }
        let width = temperature == 0 ? options.beam : options.bestOf
        struct Hyp { var tokens: [Int]; var sumLogProb: Double; var cache: WhisperDecoder.Cache }
        var live: [Hyp] = [Hyp(tokens: [], sumLogProb: 0, cache: base)]
        var lastLogits = [promptLogits.row(1)]
        if temperature > 0 {
            live = (0..<width).map { _ in Hyp(tokens: [], sumLogProb: 0, cache: base.copy()) }
            lastLogits = Array(repeating: lastLogits[0], count: width)
        }
        var finished: [(tokens: [Int], sumLogProb: Double)] = []
        while !live.isEmpty {
            var candidates: [(parent: Int, token: Int, score: Double)] = []
            for (i, hyp) in live.enumerated() {
                var logProbs = lastLogits[i]
                filter.apply(&logProbs, sampled: hyp.tokens)
                if temperature > 0 {
                    // Sampled from the tempered distribution, scored by the model's own.
                    var tempered = logProbs
                    for j in tempered.indices { tempered[j] /= Float(temperature) }
                    tempered.withUnsafeMutableBufferPointer { Activations.logSoftmax($0.baseAddress!, count: $0.count) }
                    logProbs.withUnsafeMutableBufferPointer { Activations.logSoftmax($0.baseAddress!, count: $0.count) }
                    let token = sample(tempered)
                    candidates.append((i, token, hyp.sumLogProb + Double(logProbs[token])))
                } else {
                    logProbs.withUnsafeMutableBufferPointer { Activations.logSoftmax($0.baseAddress!, count: $0.count) }
                    for token in BeamRanking.topTokens(logProbs, k: width + 1) {
                        candidates.append((i, token, hyp.sumLogProb + Double(logProbs[token])))
                    }
                }
            }
            var next: [Hyp] = []
            var seen = Set<[Int]>()
            let atLimit = sampleBegin + (live.first?.tokens.count ?? 0) + 1 >= maxTotal
            // Ranked, as openai-whisper's beam: ended sequences join the finished list
            // (while it has room) until `width` live ones are kept.
            for c in temperature == 0 ? BeamRanking.ranked(candidates, by: \.score) : candidates {
                let tokens = live[c.parent].tokens + [c.token]
                if temperature == 0 { guard seen.insert(tokens).inserted else { continue } }
                if c.token == vocab.endOfText || atLimit {
                    if temperature > 0 || finished.count < width {
                        finished.append((c.token == vocab.endOfText ? Array(tokens.dropLast()) : tokens, c.score))
                    }
                } else {
                    next.append(Hyp(tokens: tokens, sumLogProb: c.score, cache: live[c.parent].cache))
                    if temperature == 0 && next.count == width { break }
                }
            }
            if temperature == 0 && finished.count >= width { break }
            if next.isEmpty { break }
            // Forked hypotheses get their own cache; a parent's first child reuses it.
            var used = Set<ObjectIdentifier>()
            for i in next.indices {
                if !used.insert(ObjectIdentifier(next[i].cache)).inserted { next[i].cache = next[i].cache.copy() }
            }
            let out = decoder.forward(next.map { ([$0.tokens.last!], $0.cache) }, audio: audio, crossAttention: &none)
            lastLogits = (0..<next.count).map { out.row($0) }
            live = next
        }
        if finished.isEmpty { finished = live.map { ($0.tokens, $0.sumLogProb) } }
        let best = finished.max { a, b in
            a.sumLogProb / Double(max(a.tokens.count, 1)) < b.sumLogProb / Double(max(b.tokens.count, 1))
        }!
        let text = model.tokenizer.decode(best.tokens)
        return WindowResult(tokens: best.tokens, averageLogProb: best.sumLogProb / Double(best.tokens.count + 1),
                            noSpeechProbability: noSpeech, temperature: temperature,
                            compressionRatio: Self.compressionRatio(text))
    }

    func sample(_ logProbs: [Float]) -> Int {
        var u = Double(random.next() >> 11) / Double(1 << 53)
        for (i, lp) in logProbs.enumerated() where lp > -.infinity {
            u -= Foundation.exp(Double(lp))
            if u <= 0 { return i }
        }
        return logProbs.indices.last { logProbs[$0] > -.infinity } ?? vocab.endOfText
    }

    /// Bytes of the UTF-8 text over bytes of its zlib stream (level 6 — Python's `zlib.compress` default, as openai-whisper uses).
    public static func compressionRatio(_ text: String) -> Double {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return 0 }
        var size = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(size))
        let status = compress2(&out, &size, bytes, uLong(bytes.count), 6)
        guard status == Z_OK, size > 0 else { return 0 }
        return Double(bytes.count) / Double(size)
    }

    // MARK: - Word times (cross-attention + DTW)

    /// Where a window's word times may lie: inside the audio, up to the window's end, and
    /// not before the last word already placed, so that words never overlap (with a
    /// positive lag a window's first word would otherwise move back over the previous
    /// window's last). The upper bound never falls below the lower one.
    static func wordBounds(after previous: [TranscriptSegment], windowEnd: Double, duration: Double) -> ClosedRange<Double> {
        let earliest = previous.last(where: { !$0.words.isEmpty })?.words.last?.end ?? 0
        return earliest...max(earliest, min(windowEnd, duration))
    }

    /// A time of the alignment (seconds from the audio start) moved by the attention lag
    /// and clamped into `bounds`. Clamping is monotonic, so times in order stay in order
    /// and a word that ends where the next begins still does.
    static func place(_ alignedTime: Double, lag: Double, bounds: ClosedRange<Double>) -> Double {
        min(bounds.upperBound, max(bounds.lowerBound, alignedTime - lag))
    }

    /// Gives the window's segments their tokens and words with times from the alignment
    /// heads, moved by `options.attentionLag` and clamped into `bounds` (inside the audio,
    /// not before the previous window's last word). Returns the last word's end as the
    /// alignment put it (before the lag and the clamp into `bounds`), which the seek follows.
    @discardableResult
    func addWordTimes(_ segments: inout [TranscriptSegment], windowTokens: [[Int]], audio: WhisperDecoder.AudioContext,
                      windowFrames: Int, timeOffset: Double, windowEnd: Double,
                      bounds: ClosedRange<Double>) -> Double? {
        let textTokens = windowTokens.flatMap { $0.filter { $0 < vocab.endOfText } }
        guard !textTokens.isEmpty else { return nil }
        let lag = options.attentionLag
        func place(_ t: Double) -> Double { Self.place(t, lag: lag, bounds: bounds) }
        let decoder = model.network.decoder
        let start = startSequence + [vocab.noTimestamps]
        let sequence = start + textTokens + [vocab.endOfText]
        var cross: WhisperDecoder.CrossAttention? = .init(heads: model.config.alignmentHeads)
        // Token probabilities: row i predicts token i + 1.
        let rows = Array((start.count - 1)..<(start.count - 1 + textTokens.count))
        let logits = decoder.forward([(sequence, decoder.makeCache())], audio: audio, logitRows: rows, crossAttention: &cross)
        var probabilities: [Double] = []
        for (k, token) in textTokens.enumerated() {
            var row = logits.row(k)
            row.withUnsafeMutableBufferPointer { Activations.softmax($0.baseAddress!, count: $0.count) }
            probabilities.append(Double(row[token]))
        }
        let frames = min(audio.frames, max(1, windowFrames / 2))
        // Rows from <|notimestamps|> (which predicts the first text token) to the last text token.
        let matrix = WordAligner.alignmentMatrix(cross!.weights, frames: frames, firstRow: startSequence.count,
                                                 rows: textTokens.count + 1)
        let words = WordAligner.words(of: textTokens, tokenizer: model.tokenizer)
        let jumps = WordAligner.tokenFrames(matrix: matrix, rows: textTokens.count + 1, frames: frames)
        let times = WordAligner.wordTimes(tokenFrames: jumps, wordLengths: words.map(\.tokens.count),
                                          secondsPerFrame: Self.timePrecision)
        // The alignment dump: the alignment heads' mean attention, a row per token and the end step.
        let attention = WordAligner.meanAttention(cross!.weights, frames: frames, firstRow: startSequence.count,
                                                  rows: textTokens.count + 1)
        var g = 0
        for s in segments.indices {
            let ids = windowTokens[s].filter { $0 < vocab.endOfText }
            var tokens: [TranscriptToken] = []
            for id in ids {
                let start = place(timeOffset + Double(jumps[g]) * Self.timePrecision)
                let end = max(start, place(timeOffset + Double(jumps[g + 1]) * Self.timePrecision))
                tokens.append(TranscriptToken(id: id, piece: String(decoding: model.tokenizer.bytes[id], as: UTF8.self),
                                              frame: jumps[g], start: start, end: end,
                                              logProb: Foundation.log(max(probabilities[g], 1e-30))))
                g += 1
            }
            segments[s].tokens = tokens
            segments[s].attention = Array(attention[(g - ids.count)...g])
        }
        // Words back into their segments, in order.
        var k = 0, tokenIndex = 0
        var rawLastEnd: Double?  // of the last segment's last word
        for s in segments.indices {
            let count = windowTokens[s].filter { $0 < vocab.endOfText }.count
            var placed = 0
            rawLastEnd = nil
            var segmentWords: [TranscriptWord] = []
            while k < words.count && placed < count {
                let w = words[k]
                let p = w.tokens.indices.map { probabilities[tokenIndex + $0] }
                let confidence = p.isEmpty ? 0 : p.reduce(0, +) / Double(p.count)
                let startTime = place(timeOffset + times[k].start)
                let endTime = max(startTime, place(timeOffset + times[k].end))
                let text = w.text.trimmingCharacters(in: .whitespaces)
                segmentWords.append(TranscriptWord(text: text, start: startTime, end: endTime, confidence: confidence))
                if !text.isEmpty { rawLastEnd = min(windowEnd, max(timeOffset + times[k].start, timeOffset + times[k].end)) }
                placed += w.tokens.count
                tokenIndex += w.tokens.count
                k += 1
            }
            segments[s].words = segmentWords.filter { !$0.text.isEmpty }
            if let first = segments[s].words.first, let last = segments[s].words.last {
                segments[s].start = min(segments[s].start, first.start)
                segments[s].end = max(first.start, min(segments[s].end, windowEnd), last.end)
            }
            // Attention columns are the window's frames, counted from the window start.
            segments[s].frameOffset = timeOffset - segments[s].start
        }
        return rawLastEnd
    }
}

/// openai-whisper's logit filters for one decoding step: blank suppression at the
/// start, the model's suppressed tokens, and the timestamp rules — timestamps come
/// in pairs, never decrease, the text opens with one within the first second, and
/// a timestamp is forced when their total probability beats every text token.
public struct WhisperLogitFilter: Sendable {
    public let vocabulary: WhisperConfig.Vocabulary
    public let spaceToken: Int?
    /// The model's suppress list plus the task and start tokens (openai-whisper's `-1` expansion).
    public let suppressed: [Int]
    /// Latest first timestamp, in timestamp steps (openai-whisper's 1 s).
    public var maxInitialTimestamp = 50

    public init(vocabulary: WhisperConfig.Vocabulary, spaceToken: Int?) {
        self.vocabulary = vocabulary
        self.spaceToken = spaceToken
        var ids = vocabulary.suppressTokens ?? []
        ids += [vocabulary.transcribe, vocabulary.translate, vocabulary.startOfTranscript, vocabulary.startOfPrevious,
                vocabulary.startOfLM]
        if let noSpeech = vocabulary.noSpeech { ids.append(noSpeech) }
        suppressed = Array(Set(ids)).sorted()
    }

    /// Sets the logits of the tokens that may not follow `sampled` (the tokens
    /// decoded so far in this window, after the prompt) to −∞.
    public func apply(_ logits: inout [Float], sampled: [Int]) {
        let eot = vocabulary.endOfText, tsBegin = vocabulary.timestampBegin
        let n = logits.count
        if sampled.isEmpty {
            if let spaceToken { logits[spaceToken] = -.infinity }
            logits[eot] = -.infinity
        }
        for id in suppressed where id < n { logits[id] = -.infinity }
        logits[vocabulary.noTimestamps] = -.infinity
        let lastWasTimestamp = (sampled.last ?? -1) >= tsBegin
        let penultimateWasTimestamp = sampled.count < 2 || sampled[sampled.count - 2] >= tsBegin
        if lastWasTimestamp {
            if penultimateWasTimestamp {
                for j in tsBegin..<n { logits[j] = -.infinity }  // a pair just closed: text or the end next
            } else {
                for j in 0..<eot { logits[j] = -.infinity }      // an open timestamp: its partner or the end next
            }
        }
        if let lastStamp = sampled.last(where: { $0 >= tsBegin }) {
            // Never backwards; after a closed pair, strictly forwards (no empty segments, no loops).
            let upTo = lastWasTimestamp && !penultimateWasTimestamp ? lastStamp : lastStamp + 1
            for j in tsBegin..<min(upTo, n) { logits[j] = -.infinity }
        }
        if sampled.isEmpty {
            for j in 0..<tsBegin { logits[j] = -.infinity }
            for j in min(n, tsBegin + maxInitialTimestamp + 1)..<n { logits[j] = -.infinity }
        }
        var logProbs = logits
        logProbs.withUnsafeMutableBufferPointer { Activations.logSoftmax($0.baseAddress!, count: $0.count) }
        var maxText = -Float.infinity
        for j in 0..<tsBegin { maxText = max(maxText, logProbs[j]) }
        let stampMax = logProbs.withUnsafeBufferPointer { Activations.maximum($0.baseAddress! + tsBegin, count: n - tsBegin) }
        if stampMax > -.infinity {
            var sum: Float = 0
            for j in tsBegin..<n { sum += Foundation.exp(logProbs[j] - stampMax) }
            if stampMax + Foundation.log(sum) > maxText {
                for j in 0..<tsBegin { logits[j] = -.infinity }
            }
        }
    }
}

/// Word timing from cross-attention, as openai-whisper's `timing.py` defines it:
/// the alignment heads' weights, standardized per frame over tokens, median-
/// filtered over time (width 7), averaged over heads; a monotonic DTW path
/// through the negated matrix gives each token's first frame.
public enum WordAligner {
    /// `rows × frames`: mean over heads of the standardized, filtered weights of
    /// token rows `firstRow ..< firstRow + rows`.
    public static func alignmentMatrix(_ heads: [Matrix], frames: Int, firstRow: Int, rows: Int) -> [Float] {
        var mean = [Float](repeating: 0, count: rows * frames)
        for head in heads {
            let all = head.rows
            // Softmax restricted to the window's frames: renormalize each row.
            var w = [Float](repeating: 0, count: all * frames)
            for r in 0..<all {
                var sum: Float = 0
                for f in 0..<frames { sum += head[r, f] }
                for f in 0..<frames { w[r * frames + f] = head[r, f] / max(sum, 1e-30) }
            }
            // Standardize each frame over all token rows (unbiased std, as torch.std).
            for f in 0..<frames {
                var m: Float = 0
                for r in 0..<all { m += w[r * frames + f] }
                m /= Float(all)
                var v: Float = 0
                for r in 0..<all { let d = w[r * frames + f] - m; v += d * d }
                let sd = (v / Float(max(all - 1, 1))).squareRoot()
                for r in 0..<all { w[r * frames + f] = (w[r * frames + f] - m) / max(sd, 1e-12) }
            }
            for r in 0..<rows {
                let filtered = medianFilter(Array(w[((firstRow + r) * frames)..<((firstRow + r + 1) * frames)]), width: 7)
                for f in 0..<frames { mean[r * frames + f] += filtered[f] / Float(heads.count) }
            }
        }
        return mean
    }

    /// Median over a sliding window with reflect padding (the edge value not repeated).
    static func medianFilter(_ x: [Float], width: Int) -> [Float] {
        let n = x.count, half = width / 2
        guard n > half else { return x }
        var out = x
        var window = [Float](repeating: 0, count: width)
        for i in 0..<n {
            for k in 0..<width {
                var j = i + k - half
                if j < 0 { j = -j }
                if j >= n { j = 2 * (n - 1) - j }
                window[k] = x[max(0, min(n - 1, j))]
            }
            window.sort()
            out[i] = window[half]
        }
        return out
    }

    /// DTW through `cost` (`rows × frames`, lower is better), steps diagonal, down or
    /// right; returns the (row, frame) path from (0, 0) to the last cell.
    static func dtw(_ cost: [Float], rows: Int, frames: Int) -> [(row: Int, frame: Int)] {
        let w = frames + 1
        var acc = [Float](repeating: .infinity, count: (rows + 1) * w)
        var trace = [Int8](repeating: -1, count: (rows + 1) * w)
        acc[0] = 0
        for j in 1...frames {
            for i in 1...rows {
                let c0 = acc[(i - 1) * w + j - 1], c1 = acc[(i - 1) * w + j], c2 = acc[i * w + j - 1]
                let (c, t): (Float, Int8) = c0 < c1 && c0 < c2 ? (c0, 0) : (c1 < c0 && c1 < c2 ? (c1, 1) : (c2, 2))
                acc[i * w + j] = cost[(i - 1) * frames + j - 1] + c
                trace[i * w + j] = t
            }
        }
        for j in 0...frames { trace[j] = 2 }
        for i in 0...rows { trace[i * w] = 1 }
        var i = rows, j = frames
        var path: [(Int, Int)] = []
        while i > 0 || j > 0 {
            path.append((i - 1, j - 1))
            switch trace[i * w + j] {
            case 0: i -= 1; j -= 1
            case 1: i -= 1
            default: j -= 1
            }
        }
        return path.reversed()
    }

    /// Words of a token sequence: a token starting with a space, or punctuation,
    /// begins a new word (openai-whisper's split for space-delimited languages).
    public static func words(of tokens: [Int], tokenizer: WhisperTokenizer) -> [(text: String, tokens: [Int])] {
        var words: [(text: String, tokens: [Int])] = []
        var pending: [Int] = []
        var pendingBytes: [UInt8] = []
        var units: [(text: String, tokens: [Int])] = []
        // Tokens that complete a UTF-8 character form one unit.
        for token in tokens {
            pending.append(token)
            pendingBytes += tokenizer.bytes[token]
            if let text = String(validating: pendingBytes, as: UTF8.self) {
                units.append((text, pending))
                pending = []
                pendingBytes = []
            }
        }
        if !pending.isEmpty { units.append((String(decoding: pendingBytes, as: UTF8.self), pending)) }
        let punctuation = Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
        for unit in units {
            let stripped = unit.text.trimmingCharacters(in: .whitespaces)
            let isPunctuation = stripped.count == 1 && punctuation.contains(stripped.first!)
            if words.isEmpty || unit.text.hasPrefix(" ") || isPunctuation {
                words.append(unit)
            } else {
                words[words.count - 1].text += unit.text
                words[words.count - 1].tokens += unit.tokens
            }
        }
        return words
    }

    /// The frame at which the DTW path first enters each row: a token's time.
    public static func tokenFrames(matrix: [Float], rows: Int, frames: Int) -> [Int] {
        let path = dtw(matrix.map { -$0 }, rows: rows, frames: frames)
        var jumps: [Int] = []
        var previousRow = -1
        for step in path where step.row != previousRow {
            jumps.append(step.frame)
            previousRow = step.row
        }
        return jumps
    }

    /// Start and end (seconds from the window start) of each word: the first frames of
    /// its first token and of the token after its last.
    public static func wordTimes(tokenFrames jumps: [Int], wordLengths: [Int],
                                 secondsPerFrame: Double) -> [(start: Double, end: Double)] {
        var boundaries = [0]
        for n in wordLengths { boundaries.append(boundaries.last! + n) }
        return wordLengths.indices.map { k in
            let s = Double(jumps[min(boundaries[k], jumps.count - 1)]) * secondsPerFrame
            let e = Double(jumps[min(boundaries[k + 1], jumps.count - 1)]) * secondsPerFrame
            return (s, e)
        }
    }

    /// The plain mean over heads of the attention of token rows `firstRow ..< firstRow + rows`,
    /// renormalized over the window's `frames` (what the alignment dumps show).
    public static func meanAttention(_ heads: [Matrix], frames: Int, firstRow: Int, rows: Int) -> [[Float]] {
        (0..<rows).map { r in
            var row = [Float](repeating: 0, count: frames)
            for head in heads {
                var sum: Float = 0
                for f in 0..<frames { sum += head[firstRow + r, f] }
                for f in 0..<frames { row[f] += head[firstRow + r, f] / max(sum, 1e-30) / Float(heads.count) }
            }
            return row
        }
    }
}

/// A small, seedable generator (Steele et al.'s SplitMix64) so sampled fallbacks repeat.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
