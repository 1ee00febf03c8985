import ArgumentParser
import Foundation
import LasrAudio
import LasrCore
import LasrDecoding
import LasrFeatures
import LasrModel
import LasrNN
import LasrStream

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the speed and memory of lasr's stages on this machine.",
        discussion: """
            Stages: 'audio' writes a synthetic 44.1 kHz stereo 16-bit WAV of --audio-seconds \
            to the temporary directory, then times decoding, downmixing and resampling it to \
            16 kHz (its peak memory is measured from a reset of the peak RSS, Linux only). \
            'features' times log-mel extraction on one thread over --feature-seconds of \
            16 kHz audio. Speeds are given as real-time factors: seconds of audio processed \
            per second of wall time. 'encoder' times the convolutional encoder on 10 s of \
            audio; 'decoder' times one batched decoder step for --beam hypotheses over \
            10 s of encoder frames; 'transcribe' runs the whole pipeline (model load \
            included) over --files or the audio of --manifest and reports the real-time \
            factor and peak memory; 'long' concatenates the --manifest audio (or --files) \
            into one file of --long-seconds and transcribes it, for the peak memory of a \
            long input. 'scaling' transcribes the first 1, 10, 60 and 600 s of that audio \
            with beam 8, and its first 60 s with beams 1, 4, 8 and 16, to show how the cost \
            grows. 'stream' plays the input audio (1 s of silence after each file) into \
            the streaming recognizer at real-time pace for --stream-seconds and reports the \
            latency from the end of each utterance's speech to its result; then it feeds \
            --long-seconds of the same stream as fast as decoding keeps up and reports the \
            peak memory. \
            The model stages use --model (default: models/default), native or Whisper; \
            for a Whisper model, 'encoder' times one 30 s window and 'decoder' one step of \
            the beam after 32 tokens. \
            docs/benchmarks.md records the numbers and the machine.
            """)

    enum Stage: String, ExpressibleByArgument, CaseIterable {
        case audio, features, encoder, decoder, transcribe, scaling, long, stream, all
    }

    @Option(help: "Which stage to measure: \(Stage.allCases.map(\.rawValue).joined(separator: ", ")).")
    var stage: Stage = .all

    @Option(help: "Length of the synthetic file for the audio stage, in seconds.")
    var audioSeconds: Int = 3600

    @Option(help: "Audio for the feature stage, in seconds (processed repeatedly for at least 2 s of wall time).")
    var featureSeconds: Int = 60

    @OptionGroup var decoding: DecodingArguments

    @Option(help: "Threads for matrix products.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Audio files or directories for 'transcribe' and 'long'.", valueName: "file"))
    var files: [String] = []

    @Option(help: ArgumentHelp("A JSONL manifest (lines with 'audio' relative to its folder) for 'transcribe' and 'long'.", valueName: "path"))
    var manifest: String?

    @Option(help: "Files decoded in parallel by the 'transcribe' stage, as `lasr transcribe` and `lasr eval` do (one per core; each then uses one thread for matrix products).")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Length of the concatenated input of the 'long' stage, in seconds.")
    var longSeconds: Int = 3600

    @Option(help: "Seconds of real-time streaming for the latency part of the 'stream' stage.")
    var streamSeconds: Int = 180

    @Flag(help: "The 'stream' stage decodes each utterance only at its endpoint, as `lasr stream --no-early-decode`.")
    var noEarlyDecode = false

    func validate() throws {
        guard audioSeconds > 0, featureSeconds > 0 else {
            throw ValidationError("--audio-seconds and --feature-seconds must be positive")
        }
    }

    func run() throws {
        print("lasr bench on \(ProcessInfo.processInfo.activeProcessorCount) cores, \(BuildTarget.name) build")
        if let warning = BuildTarget.slowerThanHostWarning { Terminal.warn("warning: \(warning)") }
        if stage == .features || stage == .all { try benchFeatures() }
        if stage == .audio || stage == .all { try benchAudio() }
        let modelStages: [Stage] = [.encoder, .decoder, .transcribe, .scaling, .long, .stream]
        guard modelStages.contains(stage) || stage == .all else { return }
        BLAS.setThreads(threads)
        let loadStart = Date()
        let loaded = try decoding.loadAnyModel()
        let loadTime = Date().timeIntervalSince(loadStart)
        switch loaded {
        case .whisper(let whisper):
            print(String(format: "model     %@ (Whisper) loaded in %.3f s (threads: %d)", whisper.directory, loadTime, threads))
            try benchWhisper(whisper, loadTime: loadTime)
        case .native(let lasrModel):
            print(String(format: "model     %@ loaded in %.3f s (threads: %d)", lasrModel.directory, loadTime, threads))
            if stage == .encoder || stage == .all { benchEncoder(lasrModel) }
            if stage == .decoder || stage == .all { benchDecoder(lasrModel) }
        }
        var engine = Engine(loaded: loaded, decoding: decoding)
        if noEarlyDecode { engine.endpointer.foreseeAfter = nil }
        if stage == .transcribe || stage == .all { try benchTranscribe(engine, loadTime: loadTime) }
        if stage == .scaling || stage == .all { try benchScaling(engine) }
        if stage == .long { try benchLong(engine) }
        if stage == .stream { try benchStream(engine) }
    }

    /// What the model-independent stages need from a model, native or Whisper: the
    /// same transcribers `transcribe` and `eval` use, and a stream recognizer.
    struct Engine {
        let loaded: DecodingArguments.LoadedModel
        let decoding: DecodingArguments
        var endpointer = EndpointerConfig()
        var rate: Int {
            switch loaded {
            case .native(let model): model.config.features.sampleRate
            case .whisper(let model): model.config.features.sampleRate
            }
        }
        /// The decoding's beam (the model's default unless --beam says otherwise).
        var beam: Int { decoding.transcribers(for: loaded).info.beam }

        /// A transcriber with the command's settings, or with another beam.
        func transcriber(beam: Int? = nil) -> FileTranscriber {
            var d = decoding
            if let beam { d.beam = beam }
            return d.transcribers(for: loaded).make()
        }

        func stream(_ onResult: @escaping @Sendable (StreamResult) -> Void) -> StreamingRecognizer {
            switch loaded {
            case .native(let model):
                StreamingRecognizer(model: model, options: decoding.options(for: model),
                                    inputRate: model.config.features.sampleRate, inputChannels: 1, endpointer: endpointer,
                                    onResult: onResult)
            case .whisper(let model):
                StreamingRecognizer(whisper: model, options: decoding.whisperOptions(for: model),
                                    inputRate: model.config.features.sampleRate, inputChannels: 1, endpointer: endpointer,
                                    onResult: onResult)
            }
        }
    }

    /// The Whisper stages: one 30 s encoder window, one batched decoder step of
    /// the beam at a typical position, and whole-file transcription.
    private func benchWhisper(_ model: WhisperModel, loadTime: Double) throws {
        let dims = model.config.whisper
        let samples = BenchSignal.speechLike(seconds: 30, rate: model.config.features.sampleRate)
        let mel = LogMelExtractor(config: model.config.features).compute(samples)
        var window = Matrix(rows: dims.melFrames, cols: dims.nMels)
        let rows = min(mel.rows, dims.melFrames)
        for r in 0..<rows { for c in 0..<dims.nMels { window[r, c] = mel[r, c] } }
        let encoder = model.network.encoder, decoder = model.network.decoder
        var encoded = encoder.encode(window)
        if stage == .encoder || stage == .all {
            var runs = 0
            let start = Date()
            repeat { encoded = encoder.encode(window); runs += 1 } while Date().timeIntervalSince(start) < 3
            let elapsed = Date().timeIntervalSince(start)
            print(String(format: "encoder   one 30 s window: %.1f ms per run", elapsed / Double(runs) * 1000))
        }
        if stage == .decoder || stage == .all {
            let beam = decoding.whisperOptions(for: model).beam
            let audio = decoder.audioContext(encoded)
            var none: WhisperDecoder.CrossAttention? = nil
            // A prompt of 32 tokens, then steps of `beam` sequences.
            let prompt = [model.config.vocabulary.startOfTranscript] + (0..<31).map { 300 + $0 }
            let caches = (0..<beam).map { _ in decoder.makeCache() }
            for cache in caches { _ = decoder.forward([(prompt, cache)], audio: audio, crossAttention: &none) }
            var steps = 0
            let start = Date()
            repeat {
                _ = decoder.forward(caches.map { ([400], $0) }, audio: audio, crossAttention: &none)
                for cache in caches { cache.truncate(to: prompt.count) }
                steps += 1
            } while Date().timeIntervalSince(start) < 2
            let elapsed = Date().timeIntervalSince(start)
            print(String(format: "decoder   one step, beam %d, after %d tokens: %.2f ms", beam, prompt.count,
                         elapsed / Double(steps) * 1000))
            // The output projection alone (the embedding is the largest matrix of a step).
            let t = dims.nTextState
            let x = [Float](repeating: 0.01, count: beam * t)
            var y = [Float](repeating: 0, count: beam * dims.nVocab)
            let embedding = try WeightStore(file: SafeTensorsFile(path: model.directory + "/model.safetensors"))
                .take("decoder.token_embedding.weight", [dims.nVocab, t])
            var projections = 0
            let projectionStart = Date()
            repeat {
                y.withUnsafeMutableBufferPointer { yp in
                    BLAS.fewRowsTimesTransposed(x, embedding, yp.baseAddress!, rows: beam, n: dims.nVocab, k: t)
                }
                projections += 1
            } while Date().timeIntervalSince(projectionStart) < 1
            print(String(format: "          of which the output projection (%d × %d by %d rows): %.2f ms", dims.nVocab, t, beam,
                         Date().timeIntervalSince(projectionStart) / Double(projections) * 1000))
        }
    }

    private func benchStream(_ engine: Engine) throws {
        let rate = engine.rate
        let chunk = rate / 50  // 20 ms, as a sound card delivers
        final class Clock: @unchecked Sendable {
            let lock = NSLock()
            var fedAt: [Double] = []       // wall time at which each chunk was fed
            var latencies: [Double] = []
        }
        // Real-time pace: latency of each final result after the end of its speech.
        let live = try concatenatedAudio(seconds: streamSeconds, rate: rate, gap: 1)
        let clock = Clock()
        let start = Date()
        let recognizer = engine.stream { result in
            let now = Date().timeIntervalSince(start)
            clock.lock.lock()
            let index = min(clock.fedAt.count - 1, Int(result.end * Double(rate)) / chunk)
            if index >= 0 { clock.latencies.append(now - clock.fedAt[index]) }
            clock.lock.unlock()
        }
        var offset = 0
        while offset < live.count {
            let due = Double(offset) / Double(rate)
            let wait = due - Date().timeIntervalSince(start)
            if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            let end = min(live.count, offset + chunk)
            clock.lock.lock(); clock.fedAt.append(Date().timeIntervalSince(start)); clock.lock.unlock()
            recognizer.feed(Array(live[offset..<end]))
            offset = end
        }
        recognizer.finish()
        let latencies = clock.latencies.sorted()
        func q(_ p: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(p * Double(latencies.count - 1)))] }
        let counts = recognizer.decodings
        print(String(format: "stream    %d s at real-time pace, %d utterances: latency after the end of speech median %.0f ms, p90 %.0f ms (trailing silence 500 ms; %d of %d decoded ahead of the endpoint, %d speculative decodings)",
                     streamSeconds, latencies.count, 1000 * q(0.5), 1000 * q(0.9), counts.foreseen, counts.finals,
                     counts.speculative))

        // As fast as possible: memory over a long stream.
        let long = try concatenatedAudio(seconds: min(longSeconds, 600), rate: rate, gap: 1)
        let baseline = ResourceUsage.residentBytes()
        ResourceUsage.resetPeak()
        let fastStart = Date()
        let counter = Clock()
        let fast = engine.stream { _ in
            counter.lock.lock(); counter.latencies.append(0); counter.lock.unlock()
        }
        var fed = 0
        var peakAfterFirstPass = 0
        while fed < longSeconds * rate {
            var i = 0
            while i < long.count && fed < longSeconds * rate {
                let end = min(long.count, i + chunk, i + longSeconds * rate - fed)
                fast.feed(Array(long[i..<end]))
                // Faster than real time, but no faster than decoding: what a live stream's memory looks like.
                while fast.pending > 1 { Thread.sleep(forTimeInterval: 0.002) }
                fed += end - i
                i = end
            }
            if peakAfterFirstPass == 0 { peakAfterFirstPass = ResourceUsage.peakResidentBytes() }
        }
        fast.finish()
        print(String(format: "stream    %d s fed as fast as possible: %.1f s (%.0fx real time), %d utterances; peak memory %.1f MB (%.1f MB after the first pass over the audio, %.1f MB before)",
                     longSeconds, Date().timeIntervalSince(fastStart), Double(longSeconds) / Date().timeIntervalSince(fastStart),
                     counter.latencies.count, Double(ResourceUsage.peakResidentBytes()) / 1e6,
                     Double(peakAfterFirstPass) / 1e6, Double(baseline) / 1e6))
    }

    /// The first `seconds` of the input audio, concatenated (repeated if it is shorter),
    /// with `gap` seconds of silence after each file.
    private func concatenatedAudio(seconds: Int, rate: Int, gap: Double = 0) throws -> [Float] {
        var samples: [Float] = []
        let target = seconds * rate
        let sources = try inputFiles()
        guard !sources.isEmpty else { throw ValidationError("no input audio") }
        while samples.count < target {
            for source in sources where samples.count < target {
                samples += try AudioFile.load(source, sampleRate: rate).samples
                samples += [Float](repeating: 0, count: Int(gap * Double(rate)))
            }
        }
        return Array(samples.prefix(target))
    }

    private func benchScaling(_ engine: Engine) throws {
        let rate = engine.rate
        let all = try concatenatedAudio(seconds: 600, rate: rate)
        func run(_ seconds: Int, beam: Int) -> (Double, Int) {
            let transcriber = engine.transcriber(beam: beam)
            let start = Date()
            let transcript = transcriber.transcribe(samples: Array(all.prefix(seconds * rate)), source: "\(seconds) s")
            return (Date().timeIntervalSince(start), transcript.words.count)
        }
        for seconds in [1, 10, 60, 600] {
            let (elapsed, words) = run(seconds, beam: 8)
            print(String(format: "scaling   %4d s, beam 8: %8.3f s, %5.0fx real time, %d words",
                         seconds, elapsed, Double(seconds) / elapsed, words))
        }
        for b in [1, 4, 8, 16] {
            let (elapsed, words) = run(60, beam: b)
            print(String(format: "scaling     60 s, beam %2d: %6.3f s, %5.0fx real time, %d words",
                         b, elapsed, 60 / elapsed, words))
        }
    }

    private func speechFeatures(_ model: LasrModel, seconds: Int) -> Matrix {
        let samples = BenchSignal.speechLike(seconds: seconds, rate: model.config.features.sampleRate)
        return LogMelExtractor(config: model.config.features).compute(samples)
    }

    private func benchEncoder(_ model: LasrModel) {
        let features = speechFeatures(model, seconds: 10)
        let encoderFrames = model.encoder(features).rows
        var runs = 0
        let start = Date()
        repeat { _ = model.encoder(features); runs += 1 } while Date().timeIntervalSince(start) < 2
        let elapsed = Date().timeIntervalSince(start)
        print(String(format: "encoder   10 s of audio: %.2f ms per run, %.0fx real time, %.0f encoder frames per second",
                     elapsed / Double(runs) * 1000, Double(10 * runs) / elapsed, Double(encoderFrames * runs) / elapsed))
        printPeakMemory()
    }

    private func benchDecoder(_ model: LasrModel) {
        let encoded = model.encoder(speechFeatures(model, seconds: 10))
        let rows = decoding.options(for: model).beam
        let memory = model.decoder.memory(for: encoded)
        let state = model.decoder.initialState(memory: memory)
        state.select([Int](repeating: 0, count: rows))
        var logProbs: [Float] = []
        let previous = [Int](repeating: model.vocabulary.sosEos, count: rows)
        model.decoder.step(previous: previous, state: state, memory: memory, logProbs: &logProbs,
                           window: decoding.options(for: model).attentionWindow)
        var steps = 0
        let start = Date()
        repeat {
            model.decoder.step(previous: previous, state: state, memory: memory, logProbs: &logProbs,
                               window: decoding.options(for: model).attentionWindow)
            steps += 1
        } while Date().timeIntervalSince(start) < 2
        let elapsed = Date().timeIntervalSince(start)
        print(String(format: "decoder   one step, beam %d, %d encoder frames (10 s), attention window %@: %.3f ms",
                     rows, encoded.rows, decoding.options(for: model).attentionWindow == nil ? "off" : "on",
                     elapsed / Double(steps) * 1000))
        print(String(format: "          %.0f hypothesis-steps per second", Double(steps * rows) / elapsed))
        if let lm = model.languageModel, decoding.options(for: model).lmWeight > 0 {
            let lmState = lm.initialState(rows: 1)
            lmState.select([Int](repeating: 0, count: rows))
            var lmLogProbs: [Float] = []
            var lmSteps = 0
            let lmStart = Date()
            repeat {
                lm.step(previous: previous, state: lmState, logProbs: &lmLogProbs)
                lmSteps += 1
            } while Date().timeIntervalSince(lmStart) < 2
            print(String(format: "lm        one step, beam %d (%d layer%@ of %d): %.3f ms, added to each decoder step",
                         rows, lm.config.layers, lm.config.layers == 1 ? "" : "s", lm.config.hidden,
                         Date().timeIntervalSince(lmStart) / Double(lmSteps) * 1000))
            if decoding.options(for: model).internalLMWeight > 0 {
                let ilmState = model.decoder.internalLMState(memory: memory, rows: 1)
                ilmState.select([Int](repeating: 0, count: rows))
                var ilmLogProbs: [Float] = []
                var ilmSteps = 0
                let ilmStart = Date()
                repeat {
                    model.decoder.step(previous: previous, internalLM: ilmState, logProbs: &ilmLogProbs)
                    ilmSteps += 1
                } while Date().timeIntervalSince(ilmStart) < 2
                print(String(format: "ilm       one step of the internal LM, beam %d (the speller without attention): %.3f ms, added too",
                             rows, Date().timeIntervalSince(ilmStart) / Double(ilmSteps) * 1000))
            }
        }
        printPeakMemory()
    }

    /// The process's peak resident memory so far (model, buffers and all).
    private func printPeakMemory() {
        print(String(format: "          process peak memory: %.1f MB", Double(ResourceUsage.peakResidentBytes()) / 1e6))
    }

    private func inputFiles() throws -> [String] {
        if let manifest {
            let base = URL(fileURLWithPath: manifest).deletingLastPathComponent()
            let text = try String(contentsOfFile: manifest, encoding: .utf8)
            return text.split(separator: "\n").compactMap { line in
                guard let data = line.data(using: .utf8),
                      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                      let audio = object["audio"] as? String else { return nil }
                return base.appendingPathComponent(audio).path
            }
        }
        return try AudioInputs.expand(files.isEmpty ? ["audio"] : files).map { try $0.get() }
    }

    private func benchTranscribe(_ engine: Engine, loadTime: Double) throws {
        let paths = try inputFiles()
        let workers = max(1, min(jobs, paths.count))
        if workers > 1 { BLAS.setThreads(1) }
        defer { BLAS.setThreads(threads) }
        var durations = [Double](repeating: 0, count: paths.count)
        var failure: Error?
        let start = Date()
        orderedParallelMap(count: paths.count, jobs: workers, makeWorker: {
            let recognizer = engine.transcriber()
            return { i -> Result<Double, Error> in Result { try recognizer.transcribe(file: paths[i], progress: nil).duration } }
        }, deliver: { i, result in
            switch result {
            case .success(let seconds): durations[i] = seconds
            case .failure(let error): failure = failure ?? error
            }
        })
        if let failure { throw failure }
        let elapsed = Date().timeIntervalSince(start)
        let audioSeconds = durations.reduce(0, +)
        print(String(format: "transcribe %d files, %.1f s of audio, beam %d, %d at a time: %.2f s + %.2f s model load: %.1fx real time (%.1fx without the load)",
                     paths.count, audioSeconds, engine.beam, workers, elapsed, loadTime,
                     audioSeconds / (elapsed + loadTime), audioSeconds / elapsed))
        printPeakMemory()
    }

    private func benchLong(_ engine: Engine) throws {
        let rate = engine.rate
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lasr-bench-long-\(getpid()).wav").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try AudioFileWriter(path: path, sampleRate: rate, channels: 1, encoding: .wavInt16)
        try writer.write(try concatenatedAudio(seconds: longSeconds, rate: rate))
        writer.close()
        let transcriber = engine.transcriber()
        let baseline = ResourceUsage.residentBytes()
        ResourceUsage.resetPeak()
        let start = Date()
        let transcript = try transcriber.transcribe(file: path, progress: nil)
        let elapsed = Date().timeIntervalSince(start)
        print(String(format: "long      %d s in one file, %d segments, %d words: %.1f s, %.0fx real time",
                     longSeconds, transcript.segments.count, transcript.words.count, elapsed, Double(longSeconds) / elapsed))
        print(String(format: "          peak memory: %.1f MB (%.1f MB before loading the file, model included)",
                     Double(ResourceUsage.peakResidentBytes()) / 1e6, Double(baseline) / 1e6))
    }

    private func benchFeatures() throws {
        let rate = 16000
        let samples = BenchSignal.speechLike(seconds: featureSeconds, rate: rate)
        let extractor = LogMelExtractor()
        _ = extractor.compute(Array(samples.prefix(rate)))  // warm-up
        var runs = 0
        var frames = 0
        let start = Date()
        repeat {
            frames += extractor.compute(samples).rows
            runs += 1
        } while Date().timeIntervalSince(start) < 2
        let elapsed = Date().timeIntervalSince(start)
        let audioSeconds = Double(runs * samples.count) / Double(rate)
        print(String(format: "features  %.0f s of audio in %.3f s: %.0fx real time, %.2f µs per frame (1 thread)",
                     audioSeconds, elapsed, audioSeconds / elapsed, elapsed / Double(frames) * 1e6))
        printPeakMemory()
    }

    private func benchAudio() throws {
        let inRate = 44100
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lasr-bench-\(getpid()).wav").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try AudioFileWriter(path: path, sampleRate: inRate, channels: 2, encoding: .wavInt16)
        let block = BenchSignal.speechLike(seconds: 10, rate: inRate)
        var interleaved = [Float](repeating: 0, count: block.count * 2)
        for i in 0..<block.count { interleaved[2 * i] = block[i]; interleaved[2 * i + 1] = 0.5 * block[i] }
        for _ in 0..<(audioSeconds / 10) { try writer.write(interleaved) }
        let rest = (audioSeconds % 10) * inRate * 2
        if rest > 0 { try writer.write(Array(interleaved.prefix(rest))) }
        writer.close()

        let baseline = ResourceUsage.residentBytes()
        let canReset = ResourceUsage.resetPeak()
        let start = Date()
        let audio = try AudioFile.load(path)
        let elapsed = Date().timeIntervalSince(start)
        let peak = ResourceUsage.peakResidentBytes()
        let decodedMB = Double(audio.samples.count * MemoryLayout<Float>.size) / 1e6
        print(String(format: "audio     %d s of 44.1 kHz stereo WAV → 16 kHz mono in %.2f s: %.0fx real time",
                     audioSeconds, elapsed, Double(audioSeconds) / elapsed))
        if canReset {
            print(String(format: "          peak memory while loading: %.1f MB above the %.1f MB before (decoded samples: %.1f MB)",
                         Double(peak - baseline) / 1e6, Double(baseline) / 1e6, decodedMB))
        } else {
            print(String(format: "          process peak memory: %.1f MB (decoded samples: %.1f MB)", Double(peak) / 1e6, decodedMB))
        }
    }
}

/// Deterministic test signals with a speech-like spectrum (voiced harmonics and noise).
enum BenchSignal {
    static func speechLike(seconds: Int, rate: Int) -> [Float] {
        var out = [Float](repeating: 0, count: seconds * rate)
        var seed: UInt32 = 12345
        for i in 0..<out.count {
            let t = Double(i) / Double(rate)
            let pitch = 120 + 30 * sin(2 * Double.pi * 0.5 * t)
            var voiced = 0.0
            for h in 1...8 { voiced += sin(2 * Double.pi * pitch * Double(h) * t) / Double(h) }
            seed = seed &* 1664525 &+ 1013904223
            let noise = Double(Int32(bitPattern: seed)) / Double(Int32.max)
            let envelope = 0.5 + 0.5 * sin(2 * Double.pi * 3 * t)
            out[i] = Float(0.1 * envelope * voiced + 0.01 * noise)
        }
        return out
    }
}
