import Foundation
import LasrCore
@testable import LasrDecoding
import LasrFeatures
import LasrModel
import Testing

/// A converted Whisper model's word-time offset, `timestamps.attention_lag`: the config
/// field, how `lasr models calibrate` rewrites it, and how the recognizer applies it —
/// on the random-weight fixture (Fixtures/tiny-whisper), whose alignment is arbitrary
/// but deterministic, so the same window aligned with and without the offset compares
/// time by time.
@Suite struct WhisperWordTimeTests {
    /// Both runs compute the shifted time as the same IEEE operation (aligned time − lag),
    /// so they agree exactly; this allows a few roundings of times below 100 s
    /// (100 · 2⁻⁵² ≈ 2·10⁻¹⁴) should the expression ever be reassociated.
    static let tolerance = 1e-12

    /// The fixture with its config.yaml edited.
    static func fixtureCopy(_ edit: (String) -> String) throws -> URL {
        let dir = try TestSupport.temporaryDirectory()
        for file in ["model.safetensors", "tokens.txt"] {
            try FileManager.default.copyItem(atPath: TestSupport.fixture("tiny-whisper/\(file)"),
                                             toPath: dir.appendingPathComponent(file).path)
        }
        let config = try String(contentsOfFile: TestSupport.fixture("tiny-whisper/config.yaml"), encoding: .utf8)
        try edit(config).write(to: dir.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
        return dir
    }

    @Test func configFieldParsesAndIsRangeChecked() throws {
        // The fixture's config has no timestamps block: no offset.
        let plain = try WhisperModel(directory: TestSupport.fixture("tiny-whisper"))
        #expect(plain.config.timestamps.attentionLag == 0)
        #expect(WhisperOptions(plain.config).attentionLag == 0)

        let dir = try Self.fixtureCopy { $0 + "timestamps:\n  attention_lag: -0.042   # early\n" }
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try WhisperModel(directory: dir.path)
        #expect(model.config.timestamps.attentionLag == -0.042)
        #expect(WhisperOptions(model.config).attentionLag == -0.042)
        #expect(WhisperRecognizer(model: model).options.attentionLag == -0.042)

        for (block, names) in [("  attention_lag: 1.5", ["timestamps.attention_lag", "1.5"]),
                               ("  attention_lag: -2.0", ["timestamps.attention_lag", "-2"]),
                               ("  word_offset: 0.1", ["word_offset"]),
                               ("  max_token_span: 0.16", ["timestamps.max_token_span", "native"])] {
            let bad = try Self.fixtureCopy { $0 + "timestamps:\n\(block)\n" }
            defer { try? FileManager.default.removeItem(at: bad) }
            #expect {
                _ = try WhisperModel(directory: bad.path)
            } throws: { error in
                let text = "\(error)"
                return text.contains("config.yaml") && names.allSatisfy { text.contains($0) }
            }
        }
    }

    /// What `lasr models calibrate` writes: the timestamps block alone changes, whether
    /// it is missing, at the end, or between other keys, and writing a value twice is
    /// writing it once.
    @Test func calibrationRewritesOnlyTheTimestampsBlock() throws {
        let original = try String(contentsOfFile: TestSupport.fixture("tiny-whisper/config.yaml"), encoding: .utf8)
        let once = WhisperConfig.settingAttentionLag(0.0934, in: original, note: "test")
        #expect(once.hasPrefix(original))
        #expect(once.contains("  attention_lag: 0.093   # test\n"))
        #expect(WhisperConfig.settingAttentionLag(0.0934, in: once, note: "test") == once)
        #expect(WhisperConfig.settingAttentionLag(-0.05, in: once, note: "again")
                == WhisperConfig.settingAttentionLag(-0.05, in: original, note: "again"))
        #expect(WhisperConfig.settingAttentionLag(-0.0001, in: original, note: "n").contains("attention_lag: 0.000 "))

        let middle = original.replacingOccurrences(of: "decoding:\n",
                                                   with: "timestamps:\n  attention_lag: 0.200   # old\n\ndecoding:\n")
        #expect(middle != original)
        let rewritten = WhisperConfig.settingAttentionLag(0.01, in: middle, note: "new")
        #expect(!rewritten.contains("# old") && rewritten.contains("\n\ndecoding:\n  beam: 5\n"))
        #expect(rewritten.split(separator: "\n").filter { $0.hasPrefix("timestamps:") }.count == 1)
        let dir = try Self.fixtureCopy { _ in rewritten }
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try WhisperModel(directory: dir.path).config
        #expect(config.timestamps.attentionLag == 0.01)
        #expect(try config.decoding == WhisperModel(directory: TestSupport.fixture("tiny-whisper")).config.decoding)
    }

    /// The fixture's cross-attention over 30 s of the project's recordings, and one window
    /// of text: twelve one-token words between two timestamps.
    struct Window {
        let model: WhisperModel
        let audio: WhisperDecoder.AudioContext
        let tokens: [[Int]]

        init() throws {
            model = try WhisperDecodingTests.tinyModel()
            let dims = model.config.whisper
            let features = LogMelExtractor(config: model.config.features)
                .compute(try WhisperDecodingTests.speech(seconds: 30) + [Float](repeating: 0, count: 160))
            var mel = Matrix(rows: dims.melFrames, cols: dims.nMels)
            let count = min(features.data.count, mel.data.count)
            mel.data.replaceSubrange(0..<count, with: features.data[0..<count])
            audio = model.network.decoder.audioContext(model.network.encoder.encode(mel))
            let v = model.config.vocabulary
            // " the", " a", " to", … (ids 30–41 of the fixture's tokens.txt)
            tokens = [[v.timestampBegin] + Array(30...41) + [v.timestampBegin + 500]]
        }

        /// The window aligned at `timeOffset` with `lag`, its times clamped into `bounds`;
        /// the segment, and the last word's end as the alignment put it.
        func align(lag: Double, timeOffset: Double, bounds: ClosedRange<Double>) -> (TranscriptSegment, Double?) {
            var options = WhisperOptions(model.config)
            options.attentionLag = lag
            let recognizer = WhisperRecognizer(model: model, options: options)
            var segments = [TranscriptSegment(start: timeOffset, end: timeOffset + 10, text: "text", words: [], tokens: [],
                                              attention: [], frameDuration: 0.02, frameOffset: 0, score: 0)]
            let rawEnd = recognizer.addWordTimes(&segments, windowTokens: tokens, audio: audio, windowFrames: 3000,
                                                 timeOffset: timeOffset, windowEnd: timeOffset + 30, bounds: bounds)
            return (segments[0], rawEnd)
        }
    }

    /// Away from the edges every word and token time moves by exactly the offset, and the
    /// time the seek follows does not move at all.
    @Test(arguments: [0.25, -0.25, 0.095])
    func offsetMovesEveryTimeByItsAmount(lag: Double) throws {
        let window = try Window()
        // Aligned times lie in [10, 40] s; moved by at most 0.25 s they stay inside [0, 100].
        let (raw, rawEnd) = window.align(lag: 0, timeOffset: 10, bounds: 0...100)
        let (moved, movedRawEnd) = window.align(lag: lag, timeOffset: 10, bounds: 0...100)
        #expect(raw.words.count == 12 && moved.words.map(\.text) == raw.words.map(\.text))
        #expect(rawEnd != nil && rawEnd == movedRawEnd)
        for (a, b) in zip(raw.words, moved.words) {
            #expect(abs(b.start - (a.start - lag)) <= Self.tolerance && abs(b.end - (a.end - lag)) <= Self.tolerance,
                    "\(a) → \(b)")
        }
        #expect(moved.tokens.count == raw.tokens.count)
        for (a, b) in zip(raw.tokens, moved.tokens) {
            #expect(abs(b.start - (a.start - lag)) <= Self.tolerance && abs(b.end - (a.end - lag)) <= Self.tolerance)
            #expect(a.frame == b.frame)
        }
        // The segment keeps its words inside it.
        #expect(moved.start <= moved.words[0].start + Self.tolerance && moved.end >= moved.words.last!.end - Self.tolerance)
    }

    /// At the edges a time that would leave the audio (or the window's bounds) stays on the
    /// edge; the words stay in order and do not overlap.
    @Test(arguments: [0.25, -0.25])
    func offsetClampsAtTheEdgesAndKeepsWordsInOrder(lag: Double) throws {
        let window = try Window()
        let (raw, _) = window.align(lag: 0, timeOffset: 0, bounds: -100...100)
        // The DTW path starts at the window's first frame: the first word starts at 0.
        #expect(raw.words[0].start == 0)
        let lastEnd = raw.words.last!.end
        try #require(lastEnd > 1, "the fixture's alignment should spread the words over the window")
        // An end of audio inside the words, so that the later ones meet it.
        let audioEnd = lastEnd - abs(lag) - 0.1
        let (moved, _) = window.align(lag: lag, timeOffset: 0, bounds: 0...audioEnd)
        var clampedLow = 0, clampedHigh = 0
        for (a, b) in zip(raw.words, moved.words) {
            let start = min(audioEnd, max(0, a.start - lag)), end = min(audioEnd, max(0, a.end - lag))
            #expect(abs(b.start - start) <= Self.tolerance && abs(b.end - end) <= Self.tolerance, "\(a) → \(b)")
            #expect(b.start >= 0 && b.end <= audioEnd && b.start <= b.end)
            if a.start - lag < 0 { clampedLow += 1 }
            if a.end - lag > audioEnd { clampedHigh += 1 }
        }
        #expect(clampedHigh > 0)
        if lag > 0 { #expect(clampedLow > 0 && moved.words[0].start == 0) }
        for (a, b) in zip(moved.words, moved.words.dropFirst()) { #expect(a.start <= b.start && a.end <= b.start) }
        for (a, b) in zip(moved.tokens, moved.tokens.dropFirst()) { #expect(a.start <= b.start && a.end <= b.start) }
    }

    /// Two windows as `transcribe` places them: the second starts where the first's last
    /// word ends (the seek), and with a positive offset its first words would move back
    /// over that word; the bounds keep them after it.
    @Test func wordsOfTheNextWindowDoNotOverlapThePrevious() throws {
        let window = try Window()
        let lag = 0.3
        let duration = 60.0
        let first = window.align(lag: lag, timeOffset: 0,
                                 bounds: WhisperRecognizer.wordBounds(after: [], windowEnd: 30, duration: duration))
        let seek = try #require(first.1)
        let second = window.align(lag: lag, timeOffset: seek,
                                  bounds: WhisperRecognizer.wordBounds(after: [first.0], windowEnd: seek + 30, duration: duration))
        let words = first.0.words + second.0.words
        #expect(second.0.words[0].start == first.0.words.last!.end)
        for (a, b) in zip(words, words.dropFirst()) { #expect(a.start <= b.start && a.end <= b.start, "\(a) then \(b)") }
        #expect(words.allSatisfy { $0.start >= 0 && $0.end <= duration })
        // An audio end before the window's: the bound is the audio's.
        #expect(WhisperRecognizer.wordBounds(after: [], windowEnd: 30.01, duration: 30) == 0...30)
        // A previous word ending after this window's end: the bounds collapse onto it.
        #expect(WhisperRecognizer.wordBounds(after: [first.0], windowEnd: 0, duration: 30)
                == first.0.words.last!.end...first.0.words.last!.end)
    }

    /// `lasr models calibrate` refuses what it cannot measure, and says why. (Its
    /// measurement is `lasr eval`'s timing score; the fixture's random weights would
    /// transcribe nothing, slowly, so no decoding here.)
    @Test func calibrateCommandNeedsWordsAndAWhisperModel() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let audio = TestSupport.packageRoot.appendingPathComponent("audio/01-welcome.wav").path
        let manifest = dir.appendingPathComponent("m.jsonl")
        try "{\"audio\": \"\(audio)\", \"text\": \"welcome\", \"words\": [[0.1, 0.5, \"welcome\"]]}\n"
            .write(to: manifest, atomically: true, encoding: .utf8)
        let model = try Self.fixtureCopy { $0 }
        defer { try? FileManager.default.removeItem(at: model) }
        let native = try TestSupport.runLasr(["models", "calibrate", TestSupport.fixture("tiny-model"), "--manifest", manifest.path])
        #expect(native.status == 1 && native.stderr.contains("lasr_train.timing"), "\(native.stderr)")
        let noWords = dir.appendingPathComponent("n.jsonl")
        try "{\"audio\": \"\(audio)\", \"text\": \"welcome\"}\n".write(to: noWords, atomically: true, encoding: .utf8)
        let none = try TestSupport.runLasr(["models", "calibrate", model.path, "--manifest", noWords.path])
        #expect(none.status == 1 && none.stderr.contains("words"), "\(none.stderr)")
    }
}
