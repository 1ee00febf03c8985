import Foundation
import LasrAudio
import LasrCore
import Testing

/// Files cut short or damaged in the middle: lasr decodes what is there and says, per
/// file, what it could not read (`AudioWarning`), instead of failing or staying silent.
@Suite struct DamagedAudioTests {
    static let speech = TestSupport.packageRoot.appendingPathComponent("audio/02-weather.wav").path

    /// `audio/02-weather.wav` re-encoded as `encoding` at `rate` in a fresh directory.
    static func encoded(_ encoding: AudioFileWriter.Encoding, ext: String, rate: Int = 16000) throws -> (URL, String, Audio) {
        let dir = try TestSupport.temporaryDirectory()
        let path = dir.appendingPathComponent("speech.\(ext)").path
        let source = try AudioFile.load(speech, sampleRate: rate)
        try TestSupport.writeAudio(path, samples: source.samples, rate: rate, channels: 1, encoding: encoding)
        return (dir, path, try AudioFile.load(path))
    }

    /// The first `fraction` of the file's bytes, written next to it.
    static func truncated(_ path: String, fraction: Double) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = path + ".cut" + (path as NSString).pathExtension
        try data.prefix(Int(Double(data.count) * fraction)).write(to: URL(fileURLWithPath: cut))
        return cut
    }

    /// The file with 200 bytes in the middle of its data scrambled.
    static func corrupted(_ path: String) throws -> String {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        for i in (bytes.count / 2)..<(bytes.count / 2 + 200) { bytes[i] ^= 0x5A }
        let bad = path + ".bad." + (path as NSString).pathExtension
        try Data(bytes).write(to: URL(fileURLWithPath: bad))
        return bad
    }

    @Test func truncatedWAVDecodesWhatIsThereAndSaysHowMuch() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let whole = TestSupport.packageRoot.appendingPathComponent("audio/01-welcome.wav").path
        let path = dir.appendingPathComponent("cut.wav").path
        try Data(contentsOf: URL(fileURLWithPath: whole)).prefix(5000).write(to: URL(fileURLWithPath: path))
        let audio = try AudioFile.load(path)
        // 5000 bytes less the 44-byte header, 2 bytes a sample.
        #expect(audio.samples.count == (5000 - 44) / 2)
        let warning = try #require(audio.warnings.first)
        #expect(audio.warnings.count == 1 && warning.kind == .truncated)
        #expect(warning.description.hasPrefix(path + ": warning: truncated"))
        #expect(warning.reason.contains("4.896 s") && warning.reason.contains("0.155 s"), "\(warning.reason)")
        #expect(try AudioFile.info(path).warnings.map(\.kind) == [.truncated])
    }

    @Test func headerOnlyWAVIsAnErrorThatSaysItWasCut() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let whole = TestSupport.packageRoot.appendingPathComponent("audio/01-welcome.wav").path
        let path = dir.appendingPathComponent("header.wav").path
        try Data(contentsOf: URL(fileURLWithPath: whole)).prefix(44).write(to: URL(fileURLWithPath: path))
        #expect {
            try AudioFile.load(path)
        } throws: { error in
            guard let error = error as? LasrError else { return false }
            return error.path == path && error.reason.contains("truncated")
        }
    }

    @Test func truncatedFLACKeepsTheDecodableStart() throws {
        let (dir, path, whole) = try Self.encoded(.flac16, ext: "flac")
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(whole.warnings.isEmpty)
        let cut = try Self.truncated(path, fraction: 0.5)
        let audio = try AudioFile.load(cut)
        #expect(audio.warnings.map(\.kind) == [.truncated], "\(audio.warnings)")
        #expect(audio.warnings[0].reason.contains("of the 4.685 s the header declares"), "\(audio.warnings[0].reason)")
        // Lossless: what was decoded is the start of the whole file, sample for sample.
        #expect(audio.samples.count > whole.samples.count / 3 && audio.samples.count < whole.samples.count * 2 / 3)
        #expect(Array(audio.samples.prefix(8000)) == Array(whole.samples.prefix(8000)))
    }

    /// libsndfile cannot go on after a FLAC frame that fails its checksum; a fresh
    /// handle seeks past it, and silence keeps the audio after it at its own time.
    @Test func corruptFLACFrameBecomesSilenceAndTheRestKeepsItsTime() throws {
        let (dir, path, whole) = try Self.encoded(.flac16, ext: "flac")
        defer { try? FileManager.default.removeItem(at: dir) }
        let audio = try AudioFile.load(try Self.corrupted(path))
        let warning = try #require(audio.warnings.first)
        #expect(audio.warnings.count == 1 && warning.kind == .corrupt, "\(audio.warnings)")
        #expect(audio.samples.count == whole.samples.count)
        // Everything but the damaged stretch (at most a few FLAC frames of 4096 samples) is intact.
        let differing = zip(audio.samples, whole.samples).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
        let first = try #require(differing.first), last = try #require(differing.last)
        #expect(last - first < 3 * 4096, "samples \(first)–\(last) differ")
        #expect(audio.samples[first...last].allSatisfy { $0 == 0 } || differing.count < last - first + 1)
        #expect(Array(audio.samples[(last + 1)...]) == Array(whole.samples[(last + 1)...]))
    }

    @Test(arguments: [(AudioFileWriter.Encoding.oggVorbis, "ogg", 16000), (.oggOpus, "opus", 48000)])
    func truncatedOggIsReadUpToTheCut(encoding: AudioFileWriter.Encoding, ext: String, rate: Int) throws {
        let (dir, path, whole) = try Self.encoded(encoding, ext: ext, rate: rate)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(whole.warnings.isEmpty, "\(whole.warnings)")
        let cut = try Self.truncated(path, fraction: 0.5)
        // The header no longer gives a length (libsndfile says "unknown"): no overflow, no crash.
        let info = try AudioFile.info(cut)
        #expect(info.frames == nil && info.warnings.map(\.kind) == [.truncated])
        let audio = try AudioFile.load(cut)
        #expect(audio.warnings.map(\.kind) == [.truncated], "\(audio.warnings)")
        #expect(audio.warnings[0].reason.contains("ends inside an Ogg page"))
        // The codec's setup headers come first, so half the bytes hold less than half the audio.
        #expect(audio.samples.count > 8000 && audio.samples.count < whole.samples.count / 2, "\(audio.samples.count) of \(whole.samples.count)")
    }

    @Test(arguments: [(AudioFileWriter.Encoding.oggVorbis, "ogg", 16000), (.oggOpus, "opus", 48000)])
    func corruptOggPagesAreSkippedAndCounted(encoding: AudioFileWriter.Encoding, ext: String, rate: Int) throws {
        let (dir, path, whole) = try Self.encoded(encoding, ext: ext, rate: rate)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = try Self.corrupted(path)
        #expect(try AudioFile.info(bad).warnings.map(\.kind) == [.corrupt])
        let audio = try AudioFile.load(bad)
        let warning = try #require(audio.warnings.first)
        #expect(audio.warnings.count == 1 && warning.kind == .corrupt, "\(audio.warnings)")
        #expect(warning.reason.contains("fail the Ogg page checksum") && warning.reason.contains("could not be decoded"))
        // The pages after the damage were decoded: more than the file cut where the damage starts holds.
        let before = try AudioFile.load(try Self.truncated(path, fraction: 0.5)).samples.count
        #expect(audio.samples.count > before + 1600 && audio.samples.count < whole.samples.count,
                "\(audio.samples.count) decoded, \(before) before the damage, \(whole.samples.count) in all")
    }

    /// The CLI: the damaged file's partial transcript, one warning line naming it, the
    /// other files of the batch as usual, and exit status 0 (as sox does).
    @Test func transcribeWarnsAndGoesOnWithTheBatch() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let whole = TestSupport.packageRoot.appendingPathComponent("audio/01-welcome.wav").path
        let cut = dir.appendingPathComponent("cut.wav").path
        let data = try Data(contentsOf: URL(fileURLWithPath: whole))
        try data.prefix(data.count * 6 / 10).write(to: URL(fileURLWithPath: cut))
        let run = try TestSupport.runLasr(["transcribe", cut, Self.speech, "--output-format", "json", "--output-dir", dir.path])
        #expect(run.status == 0, "\(run.stderr)")
        let warnings = run.stderr.split(separator: "\n").filter { $0.contains("warning:") }
        #expect(warnings.count == 1 && warnings[0].contains(cut) && warnings[0].contains("truncated"), "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n")
        #expect(lines.count == 2 && lines[0].hasPrefix(cut + ": ") && lines[1].hasPrefix(Self.speech + ": "))
        #expect(lines[0].count > cut.count + 2, "the partial transcript is not empty")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("cut.json"))) as? [String: Any]
        #expect((json?["warnings"] as? [String])?.first?.hasPrefix("truncated") == true)
        let clean = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("02-weather.json"))) as? [String: Any]
        #expect(clean?["warnings"] == nil)
    }
}
