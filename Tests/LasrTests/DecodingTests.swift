import Foundation
import LasrAudio
import LasrCore
@testable import LasrDecoding
import LasrFeatures
import LasrModel
import Testing

@Suite struct AttentionAlignerTests {
    @Test func followsAClearDiagonal() {
        let rows: [[Float]] = (0..<5).map { i in (0..<12).map { j in j == 2 * i + 1 ? 0.9 : 0.1 / 11 } }
        #expect(AttentionAligner.monotonicPath(rows) == [1, 3, 5, 7, 9])
    }

    @Test func staysMonotonicWhenOneStepWanders() {
        // Row 2 peaks far back (frame 0); the path must not go back, and the rows around it keep their peaks.
        var rows: [[Float]] = (0..<4).map { i in (0..<10).map { j in j == 2 * i + 2 ? 0.8 : 0.2 / 9 } }
        rows[2] = (0..<10).map { j in j == 0 ? 0.6 : (j == 6 ? 0.3 : 0.1 / 8) }
        let path = AttentionAligner.monotonicPath(rows)
        #expect(path == path.sorted())
        #expect(path[0] == 2 && path[1] == 4 && path[3] == 8)
        #expect(path[2] == 6)
    }

    @Test func tokenSpansRunFromThePreviousPeak() {
        let spans = AttentionAligner.spans([5, 9, 9, 30], maxFrames: 8)
        #expect(spans.map(\.first) == [0, 5, 9, 22])
        #expect(spans.map(\.last) == [5, 9, 9, 30])
        #expect(AttentionAligner.spans([12], maxFrames: 8).map(\.first) == [4])
    }
}

@Suite struct SegmenterTests {
    @Test func cutsLongAudioAtTheQuietestPoint() {
        let rate = 16000
        // 50 s of tone with silent gaps at 17 s and 33 s: the cuts must land in the gaps.
        var samples = TestSupport.sine(frequency: 200, rate: rate, count: 50 * rate, amplitude: 0.3)
        for gap in [17, 33] { for i in (gap * rate)..<(gap * rate + rate / 5) { samples[i] = 0 } }
        let ranges = Segmenter(maxSeconds: 20).segments(samples, sampleRate: rate)
        #expect(ranges.count == 3)
        #expect(ranges.first?.lowerBound == 0 && ranges.last?.upperBound == samples.count)
        for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
        #expect(ranges.allSatisfy { $0.count <= 20 * rate })
        #expect(abs(Double(ranges[0].upperBound) / Double(rate) - 17.1) < 0.1)
        #expect(abs(Double(ranges[1].upperBound) / Double(rate) - 33.1) < 0.1)
    }

    @Test func shortAudioIsOneSegment() {
        #expect(Segmenter().segments([Float](repeating: 0, count: 16000), sampleRate: 16000) == [0..<16000])
    }
}

/// Beam-search behaviour on the committed tiny model (random-ish weights from
/// `make train-smoke`): properties that hold for any model.
@Suite struct BeamSearchTests {
    static let modelDirectory = TestSupport.fixture("tiny-model")

    func encoded() throws -> (LasrModel, Matrix) {
        let model = try LasrModel(directory: Self.modelDirectory)
        let audio = try AudioFile.load(TestSupport.packageRoot.appendingPathComponent("audio/01-welcome.wav").path)
        let features = LogMelExtractor(config: model.config.features).compute(audio.samples)
        return (model, model.encoder(features))
    }

    func options(_ model: LasrModel, beam: Int, ctcWeight: Double? = nil) -> DecodingOptions {
        var o = DecodingOptions(model.config.decoding)
        o.beam = beam
        if let ctcWeight { o.ctcWeight = ctcWeight }
        return o
    }

    @Test func beamOneIsGreedy() throws {
        let (model, encoded) = try encoded()
        // Greedy by hand: argmax of each step, stopping at <sos/eos>.
        let memory = model.decoder.memory(for: encoded)
        let state = model.decoder.initialState(memory: memory)
        var lp: [Float] = [], tokens: [Int] = []
        var previous = model.vocabulary.sosEos
        let maxLen = max(1, Int(model.config.decoding.maxLenRatio * Double(encoded.rows)))
        for _ in 0..<maxLen {
            model.decoder.step(previous: [previous], state: state, memory: memory, logProbs: &lp)
            let best = lp.indices.filter { $0 != model.vocabulary.blank }.max { lp[$0] < lp[$1] }!
            if best == model.vocabulary.sosEos { break }
            tokens.append(best)
            previous = best
        }
        // The eos threshold can end a greedy hypothesis early only where eos is nearly as likely
        // as the best token; with threshold 1 it is exactly argmax.
        var exact = options(model, beam: 1, ctcWeight: 0)
        exact.eosThreshold = 1
        let greedy = try #require(BeamSearch(model: model, options: exact).decode(encoded).first)
        #expect(greedy.tokens == tokens)
    }

    @Test func widerBeamNeverScoresWorse() throws {
        let (model, encoded) = try encoded()
        // The ranking score the search maximizes, for growing beams.
        var best: [Hypothesis] = []
        for beam in [1, 2, 4, 8] {
            var o = options(model, beam: beam)
            o.maxBacktrackFrames = nil
            best.append(try #require(BeamSearch(model: model, options: o).decode(encoded).first))
        }
        // A wider beam may find the narrow beam's best again, batched differently: the
        // same tokens, scored within float32 reordering of each other.
        let normalized = options(model, beam: 1).lengthNormalization
        for (narrow, wide) in zip(best, best.dropFirst()) {
            // Length normalization divides by the tokens plus the end: one per log-probability.
            let tolerance = TestSupport.Float32Bounds.logProbabilitySum(
                narrow.tokenLogProbs, normalizer: normalized ? Double(narrow.tokenLogProbs.count) : 1)
            #expect(wide.score >= narrow.score - tolerance, "\(best.map(\.score)), tolerance \(tolerance)")
        }
    }

    /// Without length normalization scores only fall, so stopping once nothing running ranks
    /// above the best ended hypothesis must find what a search to the maximum length finds.
    @Test(arguments: [0.0, 0.3]) func earlyStopIsExactWithoutLengthNormalization(ctcWeight: Double) throws {
        let (model, encoded) = try encoded()
        var o = options(model, beam: 4, ctcWeight: ctcWeight)
        o.lengthNormalization = false
        var full = BeamSearch(model: model, options: o)
        full.stopsEarly = false
        let early = try #require(BeamSearch(model: model, options: o).decode(encoded).first)
        let exhaustive = try #require(full.decode(encoded).first)
        #expect(early.tokens == exhaustive.tokens)
        // The same steps in the same batches: equal, but for how the last ones are ordered.
        #expect(abs(early.score - exhaustive.score) <= TestSupport.Float32Bounds.logProbabilitySum(exhaustive.tokenLogProbs))
    }

    @Test func longFileIsDecodedSegmentBySegmentAsItIsRead() throws {
        let model = try LasrModel(directory: Self.modelDirectory)
        var samples: [Float] = []
        for name in ["01-welcome.wav", "02-weather.wav", "03-library.wav", "04-telephone.wav"] {
            samples += try AudioFile.load(TestSupport.packageRoot.appendingPathComponent("audio/\(name)").path).samples
        }
        samples += samples + samples  // ~57 s: three segments of at most 20 s
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("long.wav").path
        try TestSupport.writeAudio(path, samples: samples, rate: 16000, channels: 1, encoding: .wavFloat32)
        let recognizer = Recognizer(model: model)
        let streamed = try recognizer.transcribe(file: path)
        let inMemory = recognizer.transcribe(Audio(samples: samples, sampleRate: 16000), source: path)
        #expect(streamed.segments.count == 3)
        #expect(streamed.segments.map(\.start) == inMemory.segments.map(\.start))
        #expect(streamed.segments.map(\.text) == inMemory.segments.map(\.text))
        #expect(abs(streamed.duration - Double(samples.count) / 16000) < 1e-9)
        for segment in streamed.segments { #expect(segment.end - segment.start <= 20) }
    }

    @Test func timestampsAreMonotonicAndInsideTheAudio() throws {
        let model = try LasrModel(directory: Self.modelDirectory)
        let path = TestSupport.packageRoot.appendingPathComponent("audio/03-library.wav").path
        let transcript = try Recognizer(model: model).transcribe(file: path)
        #expect(transcript.segments.count == 1)
        let tokens = transcript.segments.flatMap(\.tokens)
        for (a, b) in zip(tokens, tokens.dropFirst()) { #expect(a.frame <= b.frame) }
        for t in tokens { #expect(t.start >= 0 && t.start <= t.end && t.end <= transcript.duration + 1e-9) }
        let words = transcript.words
        for (a, b) in zip(words, words.dropFirst()) { #expect(a.start <= b.start && a.end <= b.start + 1e-9) }
        for w in words { #expect(w.confidence > 0 && w.confidence <= 1) }
        for row in transcript.segments[0].attention {
            #expect(abs(row.reduce(0, +) - 1) < 1e-3)
        }
    }
}
