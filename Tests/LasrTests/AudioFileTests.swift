import Foundation
@testable import LasrAudio
import LasrCore
import Testing

@Suite struct AudioFileTests {
    struct Encoding: CustomTestStringConvertible, Sendable {
        let name: String
        let ext: String
        let encoding: AudioFileWriter.Encoding
        /// Level tolerance in dB: lossless formats are exact, lossy codecs are not.
        let tolerance: Double
        var testDescription: String { name }
    }

    static let encodings: [Encoding] = [
        Encoding(name: "WAV 8-bit", ext: "wav", encoding: .wavUInt8, tolerance: 0.1),
        Encoding(name: "WAV 16-bit", ext: "wav", encoding: .wavInt16, tolerance: 0.05),
        Encoding(name: "WAV 24-bit", ext: "wav", encoding: .wavInt24, tolerance: 0.05),
        Encoding(name: "WAV 32-bit", ext: "wav", encoding: .wavInt32, tolerance: 0.05),
        Encoding(name: "WAV float", ext: "wav", encoding: .wavFloat32, tolerance: 0.05),
        Encoding(name: "WAV double", ext: "wav", encoding: .wavFloat64, tolerance: 0.05),
        Encoding(name: "FLAC", ext: "flac", encoding: .flac16, tolerance: 0.05),
        Encoding(name: "Ogg Vorbis", ext: "ogg", encoding: .oggVorbis, tolerance: 1.0),
        Encoding(name: "Ogg Opus", ext: "opus", encoding: .oggOpus, tolerance: 1.0),
    ]

    @Test(arguments: encodings)
    func decodesStereoToMono16k(encoding: Encoding) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Opus only takes 8/12/16/24/48 kHz; the others get an odd rate to exercise resampling.
        let rate = encoding.ext == "opus" ? 48000 : 44100
        let seconds = 2
        let left = TestSupport.sine(frequency: 440, rate: rate, count: rate * seconds, amplitude: 0.4)
        // The right channel is the negated left plus a 1 kHz tone: the mono mix must keep only 1 kHz at half level.
        let tone = TestSupport.sine(frequency: 1000, rate: rate, count: rate * seconds, amplitude: 0.4)
        var interleaved: [Float] = []
        for i in 0..<left.count { interleaved += [left[i], -left[i] + tone[i]] }
        let path = dir.appendingPathComponent("tone.\(encoding.ext)").path
        try TestSupport.writeAudio(path, samples: interleaved, rate: rate, channels: 2, encoding: encoding.encoding)

        let info = try AudioFile.info(path)
        #expect(info.sampleRate == rate)
        #expect(info.channels == 2)
        #expect(abs(try #require(info.duration) - Double(seconds)) < 0.05)
        #expect(info.warnings.isEmpty, "\(info.warnings)")

        let audio = try AudioFile.load(path)
        #expect(audio.warnings.isEmpty, "\(audio.warnings)")
        #expect(audio.sampleRate == 16000)
        #expect(abs(audio.samples.count - 16000 * seconds) < 400)  // codecs may pad a few ms
        let expected = 0.2 / 2.0.squareRoot()  // RMS of a 0.2-amplitude sine
        let level = TestSupport.rms(audio.samples, 2000..<(16000 * seconds - 2000))
        #expect(abs(TestSupport.decibels(level / expected)) < encoding.tolerance,
                "\(encoding.name): level \(level), expected \(expected)")
    }

    @Test func blockBoundariesDoNotChangeTheResult() throws {
        // Longer than several read blocks: loading in blocks must equal resampling the whole signal at once.
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let rate = 22050
        var signal = TestSupport.sine(frequency: 523, rate: rate, count: rate * 6, amplitude: 0.3)
        for i in 0..<signal.count { signal[i] += 0.1 * Float(sin(Double(i) * 0.37)) }
        let path = dir.appendingPathComponent("long.wav").path
        try TestSupport.writeAudio(path, samples: signal, rate: rate, channels: 1,
                                   encoding: .wavFloat32)
        let loaded = try AudioFile.load(path)
        let resampler = Resampler(inputRate: rate, outputRate: 16000)
        var expected: [Float] = []
        resampler.process(signal, into: &expected)
        resampler.finish(into: &expected)
        #expect(loaded.samples == expected)
    }

    @Test func renderedSamplesInAudioFolderLoad() throws {
        let folder = TestSupport.packageRoot.appendingPathComponent("audio").path
        let files = try AudioInputs.expand([folder]).map { try $0.get() }
        #expect(files.count >= 4)
        for file in files {
            let audio = try AudioFile.load(file)
            #expect(audio.duration > 1 && audio.duration < 30, "\(file)")
            #expect(TestSupport.rms(audio.samples) > 0.01, "\(file) is silent")
        }
    }
}

@Suite struct BadInputTests {
    /// A valid 16-bit WAV to damage.
    static func validWAV(in dir: URL) throws -> Data {
        let path = dir.appendingPathComponent("valid.wav").path
        try TestSupport.writeAudio(path, samples: TestSupport.sine(frequency: 440, rate: 16000, count: 16000),
                                   rate: 16000, channels: 1, encoding: .wavInt16)
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    func expectError(_ kind: LasrError.Kind, loading path: String, mentioning words: [String] = []) {
        do {
            _ = try AudioFile.load(path)
            Issue.record("\(path) loaded, expected \(kind)")
        } catch let error as LasrError {
            #expect(error.kind == kind, "\(error)")
            #expect(error.path == path)
            #expect(!error.description.contains("\n"))
            for word in words { #expect(error.description.lowercased().contains(word), "\(error)") }
        } catch {
            Issue.record("unexpected error type: \(error)")
        }
    }

    @Test func missingFile() {
        expectError(.fileNotFound, loading: "/nonexistent/speech.wav", mentioning: ["no such file"])
    }

    @Test func textFileIsNotAudio() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("notes.wav").path
        try Data("these are notes, not sound\n".utf8).write(to: URL(fileURLWithPath: path))
        expectError(.notAudio, loading: path, mentioning: ["not an audio file"])
    }

    @Test func truncatedHeader() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("truncated.wav").path
        try Self.validWAV(in: dir).prefix(30).write(to: URL(fileURLWithPath: path))
        expectError(.corruptAudio, loading: path, mentioning: ["header"])
    }

    @Test func corruptHeaderWithZeroChannels() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var bytes = try Self.validWAV(in: dir)
        bytes[22] = 0; bytes[23] = 0  // fmt chunk: channel count
        let path = dir.appendingPathComponent("corrupt.wav").path
        try bytes.write(to: URL(fileURLWithPath: path))
        expectError(.corruptAudio, loading: path, mentioning: ["channel"])
    }

    @Test func zeroSamples() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("empty.wav").path
        try TestSupport.writeAudio(path, samples: [], rate: 16000, channels: 1, encoding: .wavInt16)
        expectError(.emptyAudio, loading: path, mentioning: ["no audio samples"])
        #expect(throws: LasrError.self) { try AudioFile.info(path) }
    }

    @Test func unsupportedEncoding() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var bytes = try Self.validWAV(in: dir)
        bytes[20] = 0x55; bytes[21] = 0x00  // fmt chunk: format tag MPEG layer 3
        let path = dir.appendingPathComponent("mp3-in-wav.wav").path
        try bytes.write(to: URL(fileURLWithPath: path))
        expectError(.unsupportedEncoding, loading: path, mentioning: ["0x0055"])
    }

    @Test func directoryWithoutAudio() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("x".utf8).write(to: dir.appendingPathComponent("readme.txt"))
        let entries = AudioInputs.expand([dir.path])
        #expect(entries.count == 1)
        guard case .failure(let error) = entries[0] else { Issue.record("expected a failure"); return }
        #expect(error.kind == .noAudioInDirectory)
        expectError(.isDirectory, loading: dir.path)
    }

    @Test func batchReportsEachBadFileAndKeepsTheGoodOnes() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("good.wav").path
        try Self.validWAV(in: dir).write(to: URL(fileURLWithPath: good))
        let bad = dir.appendingPathComponent("bad.wav").path
        try Data("nope".utf8).write(to: URL(fileURLWithPath: bad))
        let empty = dir.appendingPathComponent("nothing-here")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let missing = dir.appendingPathComponent("missing.flac").path

        let run = try TestSupport.runLasr(["info", bad, good, missing, empty.path])
        #expect(run.status == 1)
        #expect(run.stdout.contains("good.wav: WAV"))
        #expect(run.stdout.contains("16000 Hz, 1 channel, 1.000 s"))
        let errors = run.stderr.split(separator: "\n")
        #expect(errors.count == 4, "\(run.stderr)")
        #expect(errors.contains { $0.contains("bad.wav") && $0.contains("not an audio file") })
        #expect(errors.contains { $0.contains("missing.flac") && $0.contains("no such file") })
        #expect(errors.contains { $0.contains("nothing-here") && $0.contains("no audio files") })
        #expect(errors.last?.contains("3 of 4 inputs failed") == true)
        #expect(!run.stderr.contains("Fatal error"))
    }
}

/// `OggOpusFile` must give exactly libsndfile's samples: it replaces libsndfile's
/// Opus decoding for speed only (Sources/LasrAudio/OggOpusFile.swift).
@Suite struct OggOpusReaderTests {
    /// Every frame of `path` through libsndfile, and through `OggOpusFile` read in
    /// blocks of `block` frames (odd, so reads end inside packets).
    static func bothWays(_ path: String, block: Int = 997) throws -> (libsndfile: [Float], reader: [Float], channels: Int) {
        let file = try SoundFile(path: path)
        #expect(file.isOggOpus)
        var expected: [Float] = []
        var buffer = [Float](repeating: 0, count: 4096 * file.info.channels)
        while case let n = try file.read(into: &buffer, frames: 4096), n > 0 {
            expected += buffer[0..<(n * file.info.channels)]
        }
        let reader = try #require(try OggOpusFile(path: path, sampleRate: file.info.sampleRate))
        #expect(reader.channels == file.info.channels)
        return (expected, try readAll(reader, block: block), reader.channels)
    }

    /// Every interleaved sample `reader` gives, read `block` frames at a time.
    static func readAll(_ reader: OggOpusFile, block: Int) throws -> [Float] {
        var all: [Float] = []
        var buffer = [Float](repeating: 0, count: block * reader.channels)
        while case let n = try reader.read(into: &buffer, frames: block), n > 0 {
            all += buffer[0..<(n * reader.channels)]
        }
        return all
    }

    /// Sample-exact equality, reported by the first differing index rather than by
    /// printing both arrays.
    static func expectSame(_ got: [Float], _ expected: [Float], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(got.count == expected.count, "lengths", sourceLocation: sourceLocation)
        let first = (0..<min(got.count, expected.count)).first { got[$0] != expected[$0] }
        #expect(first == nil, "first difference at sample \(first ?? -1)", sourceLocation: sourceLocation)
    }

    /// Speech from audio/, written as 16 kHz mono Opus by libsndfile.
    static func speechOpus(in dir: URL, name: String = "speech.opus", source: String = "01-welcome.wav") throws -> String {
        let audio = try AudioFile.load(TestSupport.packageRoot.appendingPathComponent("audio/\(source)").path)
        let path = dir.appendingPathComponent(name).path
        try TestSupport.writeAudio(path, samples: audio.samples, rate: 16000, channels: 1, encoding: .oggOpus)
        return path
    }

    @Test func monoSpeechMatchesLibsndfile() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (expected, got, _) = try Self.bothWays(try Self.speechOpus(in: dir))
        #expect(expected.count > 16000)
        Self.expectSame(got, expected)
    }

    @Test func stereo48kMatchesLibsndfile() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let left = TestSupport.sine(frequency: 440, rate: 48000, count: 48000 * 3, amplitude: 0.4)
        let right = TestSupport.sine(frequency: 1250, rate: 48000, count: 48000 * 3, amplitude: 0.3)
        var interleaved: [Float] = []
        for i in 0..<left.count { interleaved += [left[i], right[i]] }
        let path = dir.appendingPathComponent("stereo.opus").path
        try TestSupport.writeAudio(path, samples: interleaved, rate: 48000, channels: 2, encoding: .oggOpus)
        let (expected, got, channels) = try Self.bothWays(path, block: 4099)
        #expect(channels == 2)
        #expect(expected.count > 48000 * 2)
        Self.expectSame(got, expected)
    }

    @Test func chainedLinksDecodeOneAfterAnother() throws {
        // Two Ogg Opus files back to back are one chained stream (RFC 7845 §3): the
        // reader must play both links, each exactly as it decodes alone.
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try Self.speechOpus(in: dir, name: "a.opus", source: "01-welcome.wav")
        let second = try Self.speechOpus(in: dir, name: "b.opus", source: "02-weather.wav")
        let chained = dir.appendingPathComponent("chained.opus").path
        var bytes = try Data(contentsOf: URL(fileURLWithPath: first))
        bytes += try Data(contentsOf: URL(fileURLWithPath: second))
        try bytes.write(to: URL(fileURLWithPath: chained))
        let a = try Self.bothWays(first).reader, b = try Self.bothWays(second).reader
        let got = try Self.readAll(try #require(try OggOpusFile(path: chained, sampleRate: 16000)), block: 8192)
        Self.expectSame(got, a + b)
    }

    @Test func truncatedFileGivesWhatItHolds() throws {
        // A download cut short: the pages that arrived decode, and nothing crashes.
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let whole = try Self.speechOpus(in: dir)
        let full = try AudioFile.load(whole)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: whole))
        let cut = dir.appendingPathComponent("cut.opus").path
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
        let got = try Self.readAll(try #require(try OggOpusFile(path: cut, sampleRate: 16000)), block: 4096)
        #expect(got.count > full.samples.count / 4 && got.count < full.samples.count * 3 / 4)
        Self.expectSame(Array(got.prefix(8000)), Array(full.samples.prefix(8000)))
    }

    @Test func otherCodecsAreLeftToLibsndfile() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("tone.ogg").path
        try TestSupport.writeAudio(path, samples: TestSupport.sine(frequency: 440, rate: 16000, count: 16000),
                                   rate: 16000, channels: 1, encoding: .oggVorbis)
        #expect(try SoundFile(path: path).isOggOpus == false)
        #expect(try OggOpusFile(path: path, sampleRate: 16000) == nil)
    }
}
