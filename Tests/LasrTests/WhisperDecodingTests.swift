import Foundation
import LasrAudio
import LasrCore
@testable import LasrDecoding
import LasrEval
import LasrModel
import Testing

/// Whisper decoding on a tiny random-weight model (Fixtures/tiny-whisper, made by
/// tools/make_whisper_parity_fixture.py through the converter), the logit filter's
/// rules, and the word aligner; plus an opt-in run of a real converted model.
@Suite struct WhisperDecodingTests {
    static func tinyModel() throws -> WhisperModel {
        try WhisperModel(directory: TestSupport.fixture("tiny-whisper"))
    }

    /// The project's own recordings, end to end, about 40 s: two windows and a seek.
    static func speech(seconds: Double) throws -> [Float] {
        var samples: [Float] = []
        let files = try FileManager.default.contentsOfDirectory(atPath: TestSupport.packageRoot.appendingPathComponent("audio").path)
            .filter { $0.hasSuffix(".wav") }.sorted()
        while Double(samples.count) < seconds * 16000 {
            for f in files {
                samples += try AudioFile.load(TestSupport.packageRoot.appendingPathComponent("audio/\(f)").path, sampleRate: 16000).samples
            }
        }
        return Array(samples.prefix(Int(seconds * 16000)))
    }

    /// Random weights mostly end a window at once, so the segments may be few or
    /// none: what this checks is that 41 s (two windows, a seek, the fallback) runs
    /// to the end and that whatever comes out lies inside the audio, in order.
    @Test(arguments: [WhisperOptions.Padding.openai, .fasterWhisper])
    func randomWeightsStillGiveAWellFormedTranscript(padding: WhisperOptions.Padding) throws {
        let model = try Self.tinyModel()
        var options = WhisperOptions(model.config)
        options.padding = padding
        options.beam = 2
        options.bestOf = 2
        options.temperatures = [0, 1]  // one fallback: random weights fail every guard
        let samples = try Self.speech(seconds: 41)
        let transcript = WhisperRecognizer(model: model, options: options).transcribe(samples, source: "speech")
        #expect(abs(transcript.duration - 41) < 1e-6)
        var previousStart = -1.0
        for segment in transcript.segments {
            #expect(segment.start >= previousStart - 1e-9 && segment.start <= segment.end)
            #expect(segment.start >= 0 && segment.end <= transcript.duration + 1e-6)
            for word in segment.words {
                #expect(word.start <= word.end && word.start >= 0 && word.end <= transcript.duration + 1e-6)
                #expect(word.confidence >= 0 && word.confidence <= 1)
            }
            previousStart = segment.start
        }
    }

    /// A file's transcript must not depend on what the same recognizer decoded
    /// before it (`--jobs` deals files to recognizers in any order): every file's
    /// sampled fallbacks start from the seed. Two recognizers, one of which sampled
    /// a window first, must be in the same state after transcribing the same file.
    @Test func samplingRestartsFromTheSeedOnEveryFile() throws {
        let model = try Self.tinyModel()
        var options = WhisperOptions(model.config)
        options.temperatures = [1]
        options.wordTimestamps = false
        let dims = model.config.whisper
        let audio = model.network.decoder.audioContext(model.network.encoder.encode(Matrix(rows: dims.melFrames, cols: dims.nMels)))
        let file = try Self.speech(seconds: 2)
        let fresh = WhisperRecognizer(model: model, options: options)
        let used = WhisperRecognizer(model: model, options: options)
        let before = used.decodeWindow(audio: audio, prompt: [], temperature: 1).tokens
        _ = fresh.transcribe(file, source: "a")
        _ = used.transcribe(file, source: "a")
        let a = fresh.decodeWindow(audio: audio, prompt: [], temperature: 1).tokens
        let b = used.decodeWindow(audio: audio, prompt: [], temperature: 1).tokens
        #expect(!before.isEmpty && a == b)
    }

    @Test func modelDirectoryIsRecognizedAndChecked() throws {
        #expect(try ModelArchitecture.of(directory: TestSupport.fixture("tiny-whisper")) == .whisper)
        #expect(try ModelArchitecture.of(directory: TestSupport.fixture("tiny-model")) == .lasr)
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for file in ["model.safetensors", "tokens.txt"] {
            try FileManager.default.copyItem(atPath: TestSupport.fixture("tiny-whisper/\(file)"),
                                             toPath: dir.appendingPathComponent(file).path)
        }
        let config = try String(contentsOfFile: TestSupport.fixture("tiny-whisper/config.yaml"), encoding: .utf8)
        try config.replacingOccurrences(of: "alignment_heads: [[1, 0], [1, 1]]", with: "alignment_heads: [[1, 0], [5, 1]]")
            .write(to: dir.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
        #expect {
            _ = try WhisperModel(directory: dir.path)
        } throws: { error in
            let text = "\(error)"
            return text.contains("config.yaml") && text.contains("[5, 1]")
        }
    }

    @Test func timestampRules() throws {
        let model = try Self.tinyModel()
        let v = model.config.vocabulary
        let filter = WhisperLogitFilter(vocabulary: v, spaceToken: model.tokenizer.spaceToken)
        let n = v.size, ts = v.timestampBegin
        func allowed(after sampled: [Int]) -> Set<Int> {
            var logits = [Float](repeating: 0, count: n)
            filter.apply(&logits, sampled: sampled)
            return Set(logits.indices.filter { logits[$0] > -.infinity })
        }
        // The first token is a timestamp of at most 1 s.
        #expect(allowed(after: []) == Set(ts...(ts + 50)))
        // The window's first timestamp opens the text: no second timestamp right after it.
        let afterOpen = allowed(after: [ts + 10])
        #expect(afterOpen.allSatisfy { $0 < ts } && afterOpen.contains(3))
        // After a closed pair: no timestamp at all.
        let afterPair = allowed(after: [ts, 5, 6, ts + 20, ts + 20])
        #expect(afterPair.allSatisfy { $0 < ts } && afterPair.contains(v.endOfText))
        // After text then a single timestamp: its partner (strictly later than the previous pair) or the end.
        let afterClose = allowed(after: [ts, 5, ts + 20])
        #expect(afterClose.allSatisfy { $0 >= v.endOfText } && afterClose.contains(ts + 20) && !afterClose.contains(ts + 19))
        // Never: the task and start tokens, <|notimestamps|>.
        for id in [v.startOfTranscript, v.transcribe, v.noTimestamps, v.startOfPrevious] {
            #expect(!allowed(after: [ts, 5]).contains(id))
        }
        // Timestamps win when their total probability beats every text token.
        var logits = [Float](repeating: 0, count: n)
        filter.apply(&logits, sampled: [ts, 5])
        #expect(logits[5] == -.infinity)
    }

    @Test func compressionRatioFlagsRepetition() {
        let normal = "The library opens at nine and closes at six on weekdays, except on public holidays."
        let looping = String(repeating: "and then we went home ", count: 12)
        #expect(WhisperRecognizer.compressionRatio(normal) < 1.5)
        #expect(WhisperRecognizer.compressionRatio(looping) > 2.4)
        #expect(WhisperRecognizer.compressionRatio("") == 0)
    }

    @Test func wordsAndTheirTimes() throws {
        let model = try Self.tinyModel()
        let spell = model.tokenizer.spellings
        func id(_ s: String) -> Int { spell.firstIndex(of: s)! }
        // A token that starts with a space, or punctuation, starts a word; others continue it.
        let tokens = [id("\u{120}the"), id("\u{120}"), id("c"), id("a"), id("t"), id("."), id("\u{120}is")]
        let words = WordAligner.words(of: tokens, tokenizer: model.tokenizer)
        #expect(words.map(\.text) == [" the", " cat", ".", " is"])
        #expect(words.map(\.tokens.count) == [1, 4, 1, 1])
        // A diagonal alignment: token i attends to frames 10i ..< 10i + 10. openai-whisper's
        // dtw (timing.py) enters rows 1, 2, 3 at frames 9, 19, 29: the path steps down
        // diagonally from the last frame of a block.
        let rows = 4, frames = 40
        var matrix = [Float](repeating: 0, count: rows * frames)
        for r in 0..<rows { for f in (10 * r)..<(10 * r + 10) { matrix[r * frames + f] = 1 } }
        let jumps = WordAligner.tokenFrames(matrix: matrix, rows: rows, frames: frames)
        #expect(jumps == [0, 9, 19, 29])
        let times = WordAligner.wordTimes(tokenFrames: jumps, wordLengths: [1, 2], secondsPerFrame: 0.02)
        #expect(times.count == 2)
        #expect(abs(times[0].start - 0) < 1e-9 && abs(times[0].end - 0.18) < 1e-9)
        #expect(abs(times[1].start - 0.18) < 1e-9 && abs(times[1].end - 0.58) < 1e-9)
    }

    /// The CLI on a Whisper model: `transcribe` writes a JSON transcript, the
    /// commands without Whisper support say so, `models list` tells the kinds apart.
    @Test func commandLine() throws {
        let out = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        let model = TestSupport.fixture("tiny-whisper")
        let audio = TestSupport.packageRoot.appendingPathComponent("audio/01-welcome.wav").path
        let run = try TestSupport.runLasr(["transcribe", "--model", model, "--beam", "1", "--no-fallback", "--output-format", "json",
                                           "--output-dir", out.path, audio])
        #expect(run.status == 0, "\(run.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("01-welcome.json")))
        #expect((json as? [String: Any])?["segments"] != nil)
        // A live stream: each utterance the endpointer closes goes through Whisper's window loop.
        let speech = try StreamFixture.speech("01-welcome.wav")
        let stream = try StreamProcess(["--json", "--beam", "1", "--no-fallback"], model: model)
        stream.send(StreamFixture.s16le(StreamFixture.silence(1) + speech + StreamFixture.silence(1.5)))
        let (lines, errors, status) = stream.finish()
        #expect(status == 0, "\(errors)")
        let seconds = 2.5 + Double(speech.count) / 16000
        #expect(lines.count == 1, "one utterance in, one result out: \(lines)")
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let start = try #require(object["start"] as? Double), end = try #require(object["end"] as? Double)
            #expect(start >= 0 && start <= end && end <= seconds)
        }
        let bench = try TestSupport.runLasr(["bench", "--model", model, "--stage", "long", "--long-seconds", "35",
                                             "--beam", "1", "--no-fallback"])
        #expect(bench.status == 0 && bench.stdout.contains("peak memory"), "\(bench.stderr)")
        let align = try TestSupport.runLasr(["align", "--model", model, "--beam", "1", "--no-fallback", "--output-dir", out.path, audio])
        #expect(align.status == 0, "\(align.stderr)")
        for suffix in ["attention.csv", "tokens.csv", "words.csv"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("01-welcome.\(suffix)").path), "\(suffix)")
        }
        let ctc = try TestSupport.runLasr(["transcribe", "--model", model, "--ctc-weight", "0.5", audio])
        #expect(ctc.status == 1 && ctc.stderr.contains("--ctc-weight"))
        let list = try TestSupport.runLasr(["models", "list", "--dir", TestSupport.fixture("")])
        #expect(list.stdout.contains("tiny-whisper\twhisper") && list.stdout.contains("tiny-model\tlasr"))
        let unknown = try TestSupport.runLasr(["models", "install", "whisper-huge-xl"])
        #expect(unknown.status == 1 && unknown.stderr.contains("known: whisper-tiny.en"))
    }

    /// Opt-in: a real converted model, `LASR_WHISPER_MODEL=models/whisper-tiny.en`
    /// (tools/convert_whisper.py). Each of the project's recordings must come out
    /// with at most 20% word errors and word times in order inside the audio.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["LASR_WHISPER_MODEL"] != nil))
    func realModelTranscribesTheProjectRecordings() throws {
        let model = try WhisperModel(directory: ProcessInfo.processInfo.environment["LASR_WHISPER_MODEL"]!)
        let recognizer = WhisperRecognizer(model: model)
        let dir = TestSupport.packageRoot.appendingPathComponent("audio")
        for file in try FileManager.default.contentsOfDirectory(atPath: dir.path).filter({ $0.hasSuffix(".wav") }).sorted() {
            let transcript = try recognizer.transcribe(file: dir.appendingPathComponent(file).path, progress: nil)
            let reference = try String(contentsOf: dir.appendingPathComponent(file.replacingOccurrences(of: ".wav", with: ".txt")),
                                       encoding: .utf8)
            let ref = TextNormalizer.normalize(reference).split(separator: " ").map(String.init)
            let hyp = TextNormalizer.normalize(transcript.text).split(separator: " ").map(String.init)
            let rate = EditDistance.align(ref, hyp).counts.rate
            #expect(rate <= 0.2, "\(file): WER \(rate), \(transcript.text)")
            let words = transcript.words
            #expect(!words.isEmpty)
            for (a, b) in zip(words, words.dropFirst()) { #expect(a.start <= b.start) }
            #expect((words.last?.end ?? 0) <= transcript.duration + 1e-6)
        }
    }
}
