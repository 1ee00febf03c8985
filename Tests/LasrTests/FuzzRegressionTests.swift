import Foundation
import LasrAudio
import LasrCore
import LasrFuzz
import LasrModel
import LasrNN
import LasrStream
import Testing

/// The fuzz targets' committed inputs, replayed through the same entry points the
/// libFuzzer build calls (docs/fuzzing.md): every seed of Tests/Fuzz/corpus and every
/// finding of Tests/Fuzz/findings must run to the end without crashing. A crash here
/// takes the test process down, which is the failure.
@Suite struct FuzzRegressionTests {
    static let fuzzRoot = TestSupport.packageRoot.appendingPathComponent("Tests/Fuzz")

    static func inputs(_ kind: String, _ target: FuzzTarget) -> [String] {
        let folder = fuzzRoot.appendingPathComponent(kind).appendingPathComponent(target.rawValue).path
        return FileManager.default.fileExists(atPath: folder) ? FuzzReplay.files(folder) : []
    }

    static func bytes(_ path: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test(arguments: FuzzTarget.allCases)
    func corpusReplays(_ target: FuzzTarget) throws {
        let seeds = Self.inputs("corpus", target)
        #expect(seeds.count >= 3, "the \(target.rawValue) target needs a seed corpus (the audio ones: make fuzz-seeds)")
        for seed in seeds { target.run(try Self.bytes(seed)) }
    }

    @Test(arguments: FuzzTarget.allCases)
    func findingsReplay(_ target: FuzzTarget) throws {
        for finding in Self.inputs("findings", target) { target.run(try Self.bytes(finding)) }
    }

    /// The corpus stays small enough to commit and to replay in a moment.
    @Test func corpusIsSmall() throws {
        var total = 0
        for kind in ["corpus", "findings"] {
            for target in FuzzTarget.allCases {
                for path in Self.inputs(kind, target) {
                    let size = try Self.bytes(path).count
                    #expect(size <= 16384, "\(path) has \(size) bytes")
                    total += size
                }
            }
        }
        #expect(total < 1 << 20)
    }

    // MARK: - Findings, one test each: what the user sees instead of the crash

    /// The LasrError `body` throws, recording an issue when it throws something else or nothing.
    static func lasrError(_ body: () throws -> Void) -> LasrError? {
        do {
            try body()
            Issue.record("no error thrown")
        } catch let error as LasrError {
            #expect(!error.description.contains("\n"), "\(error)")
            return error
        } catch {
            Issue.record("not a LasrError: \(error)")
        }
        return nil
    }

    /// The finding's bytes in a scratch file named `name`, for the readers that take a path.
    static func finding(_ name: String, as file: String, dropFirst: Int = 0) throws -> (path: String, dir: URL) {
        let dir = try TestSupport.temporaryDirectory()
        let bytes = try Self.bytes(fuzzRoot.appendingPathComponent("findings/\(name)").path).dropFirst(dropFirst)
        let url = dir.appendingPathComponent(file)
        try Data(bytes).write(to: url)
        return (url.path, dir)
    }

    /// fuzz-audio: a FLAC whose STREAMINFO gives the total sample count as 0, "unknown",
    /// as encoders writing to a pipe leave it. libsndfile then reports SF_COUNT_MAX
    /// frames, and `Resampler.outputCount` trapped multiplying that by L (8 → 16 kHz);
    /// at 16 kHz `load`'s `reserveCapacity(count + 16)` did. (An unknown length is now
    /// nil in `AudioFileInfo`, from the truncated-audio work that went on alongside.)
    /// What remains is a header that states an absurd length: `outputCount` saturates,
    /// and the reservation is bounded by the file's size.
    @Test func flacFrameCountIsOnlyAHint() throws {
        let (path, dir) = try Self.finding("audio/flac-frame-count-overflow", as: "unknown-length.flac")
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            try AudioFile.stream(path) { _ in }
        } catch let error as LasrError {
            #expect(error.path == path)  // the fuzzer's bytes after the header are not all FLAC
        }

        // A valid FLAC claiming 2^36 − 1 frames (49 days at 16 kHz), at each kind of rate ratio.
        for rate in [8000, 16000, 44100] {
            let flac = dir.appendingPathComponent("\(rate).flac").path
            let samples = TestSupport.sine(frequency: 440, rate: rate, count: rate / 2)
            try TestSupport.writeAudio(flac, samples: samples, rate: rate, channels: 1, encoding: .flac16)
            let known = try AudioFile.load(flac)
            var bytes = try Self.bytes(flac)
            // STREAMINFO starts at byte 8; its 36-bit sample count ends it, bytes 21 (low nibble) to 25.
            bytes[21] |= 0x0F
            for i in 22...25 { bytes[i] = 0xFF }
            try Data(bytes).write(to: URL(fileURLWithPath: flac))
            #expect(try AudioFile.info(flac).frames == (1 << 36) - 1)
            var reserved = 0
            var streamed: [Float] = []
            try AudioFile.stream(flac, reserve: { reserved = $0 }) { streamed += $0 }
            #expect(reserved <= 8192 * bytes.count, "reserved \(reserved) samples for a \(bytes.count)-byte file")
            #expect(streamed.count >= known.samples.count, "\(rate) Hz")
            #expect(Array(streamed.prefix(known.samples.count)) == known.samples, "\(rate) Hz")
        }
        #expect(Resampler.outputCount(inputCount: Int.max, inputRate: 8000, outputRate: 16000) == Int.max)
        #expect(Resampler.outputCount(inputCount: (1 << 36) - 1, inputRate: 44100, outputRate: 16000) == 24_932_236_458)
        #expect(Resampler.outputCount(inputCount: Int.max - 5, inputRate: 48000, outputRate: 16000) == 3_074_457_345_618_258_601)
    }

    /// fuzz-audio: a WAV header declaring 1 Hz. The resampler to 16 kHz then has 16000
    /// phases, too many to tabulate, and computed its Kaiser taps for every output
    /// sample: 160 bytes of samples took over 10 s (libFuzzer's timeout). Rates outside
    /// 1–384 kHz are now refused when the file is opened.
    @Test func wavAtOneHertzIsRefused() throws {
        let (path, dir) = try Self.finding("audio/wav-1-hz-resampler-hang", as: "one-hertz.wav")
        defer { try? FileManager.default.removeItem(at: dir) }
        for body: () throws -> Void in [{ _ = try AudioFile.info(path) }, { _ = try AudioFile.load(path) }] {
            let error = Self.lasrError(body)
            #expect(error?.kind == .corruptAudio)
            #expect(error?.path == path)
            #expect(error?.reason == "header declares 1 Hz, outside the 1000–384000 Hz lasr reads")
        }
    }

    /// Not a fuzzer finding, the same cause on stdin: a WAV stream header at 1 Hz would
    /// send `lasr stream` into the same resampler.
    @Test func wavStreamAtOneHertzIsRefused() throws {
        var header = Array("RIFF\u{0}\u{0}\u{0}\u{0}WAVEfmt ".utf8)
        for v: UInt32 in [16, 0x0001_0001, 1, 2] { withUnsafeBytes(of: v.littleEndian) { header += $0 } }
        for v: UInt16 in [2, 16] { withUnsafeBytes(of: v.littleEndian) { header += $0 } }
        header += Array("data".utf8) + [0, 0, 0, 0]
        let reader = PCMStreamReader(declared: PCMFormat(encoding: .s16le, sampleRate: 16000, channels: 1))
        let error = Self.lasrError { _ = try header.withUnsafeBytes { try reader.push($0) } }
        #expect(error?.kind == .corruptAudio)
        #expect(error?.description == "stdin: WAV header at byte 12 declares 1 Hz, outside the 1000–384000 Hz lasr reads")
    }

    /// fuzz-model: a safetensors file whose first 8 bytes (the header length) read as
    /// 0xA6A6A6A6A6A6A6A6, above Int.max; converting it to Int trapped. It is now compared
    /// as UInt64 against the file's size.
    @Test func safetensorsHeaderLengthAboveIntMax() throws {
        // Byte 0 of a model-target input picks the file; the rest is the safetensors file.
        let (path, dir) = try Self.finding("model/safetensors-header-length-above-int-max", as: "model.safetensors", dropFirst: 1)
        defer { try? FileManager.default.removeItem(at: dir) }
        let error = Self.lasrError { _ = try SafeTensorsFile(path: path) }
        #expect(error?.kind == .invalidModel)
        #expect(error?.path == path)
        #expect(error?.reason.hasPrefix("header length 12008468691120727718 (bytes 0–7) does not fit a ") == true)
    }

    /// Not found by fuzz-model in its 20 minutes but by reading the parser while it ran
    /// (Foundation's JSON parser is not instrumented, so libFuzzer cannot steer the
    /// numbers in a header): a shape whose product overflows trapped, and a negative one
    /// with matching offsets (-2 × F32 = -8 bytes, offsets [8, 0]) passed the check and
    /// then trapped allocating an Array of -2 floats. Both inputs stay as findings.
    @Test(arguments: [("safetensors-shape-product-overflow", "[4294967296, 4294967296] has more elements than fit in memory"),
                      ("safetensors-negative-shape", "[-2] has a negative dimension")])
    func safetensorsShapeIsChecked(_ finding: String, _ shape: String) throws {
        let (path, dir) = try Self.finding("model/" + finding, as: "model.safetensors", dropFirst: 1)
        defer { try? FileManager.default.removeItem(at: dir) }
        let error = Self.lasrError { _ = try SafeTensorsFile(path: path) }
        #expect(error?.kind == .invalidModel)
        #expect(error?.description == "\(path): tensor 'w': shape \(shape)")
    }

    /// Also found by reading (and by hand-made inputs) while fuzz-model ran: sizes in a
    /// config.yaml were checked for sign at most, and the loader builds from them before
    /// the weights file can disagree. A negative `num_blocks` trapped in a Range, a huge
    /// one (or Whisper's `n_audio_layer`) asked for exabytes, and `ff_mult`, `hidden` and
    /// `radius` near 2^62 overflowed `ff_mult·d`, `4·hidden`, `2·radius + 1`. Sizes now lie
    /// in 1…2^24 and layer counts in 1…1024 (0 blocks for the native encoder).
    @Test(arguments: [
        ("config-num-blocks-negative", "encoder.num_blocks must lie in 0…1024, got -1"),
        ("config-num-blocks-huge", "encoder.num_blocks must lie in 0…1024, got 9223372036854775807"),
        ("config-ff-mult-overflow", "encoder.ff_mult must lie in 1…16777216, got 4611686018427387904"),
        ("config-hidden-overflow", "decoder.hidden must lie in 1…16777216, got 4611686018427387904"),
        ("config-radius-overflow", "decoder.attention.radius must lie in 0…16777216, got 4611686018427387904"),
        ("whisper-config-layers-huge", "whisper.n_audio_layer must lie in 1…1024, got 9223372036854775807"),
    ])
    func configSizesAreBounded(_ finding: String, _ reason: String) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let whisper = finding.hasPrefix("whisper")
        let fixture = URL(fileURLWithPath: TestSupport.fixture(whisper ? "tiny-whisper" : "tiny-model"))
        for name in ["model.safetensors", "tokens.txt"] {
            try FileManager.default.copyItem(at: fixture.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        let config = dir.appendingPathComponent("config.yaml")
        try Data(try Self.bytes(Self.fuzzRoot.appendingPathComponent("findings/model/" + finding).path).dropFirst()).write(to: config)
        let error = Self.lasrError {
            if whisper { _ = try WhisperModel(directory: dir.path) } else { _ = try LasrModel(directory: dir.path) }
        }
        #expect(error?.kind == .invalidConfig)
        #expect(error?.description == "\(config.path): \(reason)")
    }
}
