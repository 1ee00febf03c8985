import CSndFile
import Foundation
import LasrCore

/// What `lasr info` reports about an audio file, read from its header.
public struct AudioFileInfo: Sendable, Equatable {
    public let path: String
    /// Container, as libsndfile names it (e.g. "WAV (Microsoft)").
    public let container: String
    /// Sample encoding (e.g. "Signed 16 bit PCM", "Opus").
    public let encoding: String
    public let sampleRate: Int
    public let channels: Int
    /// Samples per channel; for compressed streams, as the header or index reports it.
    public let frames: Int

    public var duration: Double { sampleRate > 0 ? Double(frames) / Double(sampleRate) : 0 }
}

/// Decoded audio: mono samples at `sampleRate`.
public struct Audio: Sendable {
    public var samples: [Float]
    public let sampleRate: Int

    public init(samples: [Float], sampleRate: Int) {
        self.samples = samples
        self.sampleRate = sampleRate
    }

    public var duration: Double { Double(samples.count) / Double(sampleRate) }
}

/// Audio files through libsndfile: WAV (8/16/24/32-bit integer, 32/64-bit float),
/// FLAC, Ogg Vorbis, Ogg Opus, and the other formats libsndfile reads. libsndfile
/// opens each file; the samples of mono and stereo Ogg Opus come from `OggOpusFile`,
/// identical and faster.
public enum AudioFile {
    /// Frames decoded per read; bounds the working memory of `load` to a constant.
    static let blockFrames = 32768

    /// Reads the header of `path`.
    public static func info(_ path: String) throws -> AudioFileInfo {
        let file = try SoundFile(path: path)
        defer { file.close() }
        if file.info.frames == 0 {
            throw LasrError(.emptyAudio, path: path, "the file contains no audio samples")
        }
        return file.info
    }

    /// Decodes `path`, downmixes it to mono and resamples it to `sampleRate`.
    ///
    /// The file is read in blocks of `blockFrames`; memory holds the output samples
    /// plus a constant, however long the file is.
    public static func load(_ path: String, sampleRate: Int = 16000) throws -> Audio {
        var output: [Float] = []
        try stream(path, sampleRate: sampleRate, reserve: { output.reserveCapacity($0 + 16) }) { output += $0 }
        return Audio(samples: output, sampleRate: sampleRate)
    }

    /// Decodes `path` block by block, handing each block of mono samples at
    /// `sampleRate` to `body` as soon as it is resampled: memory stays at one block
    /// whatever the file's length. `reserve` learns the expected output length first.
    public static func stream(_ path: String, sampleRate: Int = 16000, reserve: (Int) -> Void = { _ in },
                              _ body: ([Float]) throws -> Void) throws {
        let file = try SoundFile(path: path)
        defer { file.close() }
        let info = file.info
        var reader: any FrameReader = file
        if file.isOggOpus, let opus = try OggOpusFile(path: path, sampleRate: info.sampleRate), opus.channels == info.channels {
            reader = opus
        }
        let resampler = Resampler(inputRate: info.sampleRate, outputRate: sampleRate)
        // A damaged header can claim any frame count (2^36 in a FLAC STREAMINFO), and the
        // caller allocates what it is told: trust it only as far as the file's size allows
        // (FLAC's constant blocks, the densest coding, hold under 8192 samples a byte).
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        reserve(min(Resampler.outputCount(inputCount: info.frames, inputRate: info.sampleRate, outputRate: sampleRate),
                    8192 * min(bytes, 1 << 40)))
        var interleaved = [Float](repeating: 0, count: blockFrames * info.channels)
        var mono = [Float](repeating: 0, count: blockFrames)
        var block: [Float] = []
        var total = 0
        while true {
            let n = try reader.read(into: &interleaved, frames: blockFrames)
            if n == 0 { break }
            total += n
            Downmix.mono(interleaved, channels: info.channels, frames: n, into: &mono)
            block.removeAll(keepingCapacity: true)
            mono.withUnsafeBufferPointer { resampler.process(UnsafeBufferPointer(rebasing: $0[0..<n]), into: &block) }
            try body(block)
        }
        if total == 0 {
            throw LasrError(.emptyAudio, path: path, "the file contains no audio samples")
        }
        block.removeAll(keepingCapacity: true)
        resampler.finish(into: &block)
        try body(block)
    }
}

/// Channel downmixing: the plain average of the channels.
public enum Downmix {
    /// Averages `frames` interleaved frames of `channels` channels into `output[0..<frames]`.
    public static func mono(_ interleaved: [Float], channels: Int, frames: Int, into output: inout [Float]) {
        precondition(output.count >= frames && interleaved.count >= frames * channels)
        if channels == 1 {
            for i in 0..<frames { output[i] = interleaved[i] }
            return
        }
        let scale = 1 / Float(channels)
        interleaved.withUnsafeBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in
                for i in 0..<frames {
                    var sum: Float = 0
                    let base = i * channels
                    for c in 0..<channels { sum += src[base + c] }
                    dst[i] = sum * scale
                }
            }
        }
    }
}

/// Where `AudioFile.stream` gets interleaved samples from.
protocol FrameReader: AnyObject {
    /// Reads up to `frames` interleaved frames as floats in [-1, 1]; 0 at the end.
    func read(into buffer: inout [Float], frames: Int) throws -> Int
}

extension OggOpusFile: FrameReader {}

/// An open libsndfile handle with errors turned into `LasrError`s.
final class SoundFile: FrameReader {
    let path: String
    private var handle: OpaquePointer?
    let info: AudioFileInfo
    /// Opus in Ogg, which `OggOpusFile` decodes faster than libsndfile does.
    let isOggOpus: Bool

    init(path: String) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw LasrError(.fileNotFound, path: path, "no such file")
        }
        if isDirectory.boolValue {
            throw LasrError(.isDirectory, path: path, "is a directory, not an audio file")
        }
        var sfInfo = SF_INFO()
        guard let handle = sf_open(path, Int32(SFM_READ), &sfInfo) else {
            throw SoundFile.openError(path: path)
        }
        self.handle = handle
        guard sfInfo.samplerate > 0, sfInfo.channels > 0 else {
            sf_close(handle)
            self.handle = nil
            throw LasrError(.corruptAudio, path: path,
                            "header declares \(sfInfo.samplerate) Hz and \(sfInfo.channels) channels")
        }
        guard Resampler.inputRates.contains(Int(sfInfo.samplerate)) else {
            sf_close(handle)
            self.handle = nil
            throw LasrError(.corruptAudio, path: path, "header declares \(sfInfo.samplerate) Hz, outside the "
                            + "\(Resampler.inputRates.lowerBound)–\(Resampler.inputRates.upperBound) Hz lasr reads")
        }
        isOggOpus = Int32(sfInfo.format) & Int32(SF_FORMAT_TYPEMASK) == Int32(SF_FORMAT_OGG)
            && Int32(sfInfo.format) & Int32(SF_FORMAT_SUBMASK) == Int32(SF_FORMAT_OPUS)
        info = AudioFileInfo(
            path: path,
            container: SoundFile.formatName(handle, Int32(sfInfo.format) & Int32(SF_FORMAT_TYPEMASK)),
            encoding: SoundFile.formatName(handle, Int32(sfInfo.format) & Int32(SF_FORMAT_SUBMASK)),
            sampleRate: Int(sfInfo.samplerate),
            channels: Int(sfInfo.channels),
            frames: Int(max(0, sfInfo.frames)))
    }

    deinit { close() }

    func close() {
        if let handle { sf_close(handle) }
        handle = nil
    }

    /// Reads up to `frames` interleaved frames as floats in [-1, 1]; 0 at the end.
    func read(into buffer: inout [Float], frames: Int) throws -> Int {
        guard let handle else { return 0 }
        let n = buffer.withUnsafeMutableBufferPointer { sf_readf_float(handle, $0.baseAddress, sf_count_t(frames)) }
        if n <= 0 {
            let code = sf_error(handle)
            if code != 0 {
                throw LasrError(.corruptAudio, path: path, "decoding failed: \(String(cString: sf_strerror(handle)))")
            }
            return 0
        }
        return Int(n)
    }

    private static func openError(path: String) -> LasrError {
        let code = Int(sf_error(nil))
        let detail = String(cString: sf_strerror(nil)).trimmingCharacters(in: .whitespacesAndNewlines)
        switch code {
        case SF_ERR_UNRECOGNISED_FORMAT:
            return LasrError(.notAudio, path: path, "not an audio file in a format libsndfile reads (\(detail))")
        case SF_ERR_MALFORMED_FILE:
            return LasrError(.corruptAudio, path: path, "malformed or truncated header (\(detail))")
        case SF_ERR_UNSUPPORTED_ENCODING:
            return LasrError(.unsupportedEncoding, path: path, "unsupported sample encoding (\(detail))")
        default:
            if FileManager.default.isReadableFile(atPath: path) == false {
                return LasrError(.readFailed, path: path, "cannot read the file (permission denied?)")
            }
            if let tag = WaveHeader.formatTag(path: path), !WaveHeader.decodableTags.contains(tag) {
                return LasrError(.unsupportedEncoding, path: path, String(
                    format: "unsupported WAV sample encoding (format tag 0x%04X, %@); lasr reads PCM, float, A-law, µ-law, ADPCM and GSM WAV files",
                    tag, WaveHeader.name(of: tag)))
            }
            return classify(detail, path: path)
        }
    }

    /// libsndfile reports many header problems through SF_ERR_SYSTEM or format-specific
    /// codes; sort them by their message so the user gets the right kind.
    private static func classify(_ detail: String, path: String) -> LasrError {
        let lower = detail.lowercased()
        if lower.contains("unsupported") || lower.contains("not supported") || lower.contains("encoding") {
            return LasrError(.unsupportedEncoding, path: path, "unsupported encoding (\(detail))")
        }
        if lower.contains("format") && lower.contains("recogn") {
            return LasrError(.notAudio, path: path, "not an audio file in a format libsndfile reads (\(detail))")
        }
        return LasrError(.corruptAudio, path: path, "malformed or truncated header (\(detail))")
    }

    private static func formatName(_ handle: OpaquePointer, _ format: Int32) -> String {
        var formatInfo = SF_FORMAT_INFO()
        formatInfo.format = format
        let status = sf_command(handle, Int32(SFC_GET_FORMAT_INFO), &formatInfo, Int32(MemoryLayout<SF_FORMAT_INFO>.size))
        guard status == 0, let name = formatInfo.name else { return String(format: "0x%06x", format) }
        return String(cString: name)
    }
}

/// Just enough of the RIFF/WAVE header to name the encoding of a WAV file that
/// libsndfile refused, so the user hears "unsupported encoding" rather than "corrupt".
enum WaveHeader {
    /// Format tags libsndfile decodes.
    static let decodableTags: Set<Int> = [0x0001, 0x0002, 0x0003, 0x0006, 0x0007, 0x0011, 0x0031, 0xFFFE]

    /// The `wFormatTag` of the `fmt ` chunk, or nil if `path` is not a RIFF/WAVE file with one.
    static func formatTag(path: String) -> Int? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 4096), head.count >= 22 else { return nil }
        let bytes = [UInt8](head)
        guard bytes[0..<4].elementsEqual("RIFF".utf8), bytes[8..<12].elementsEqual("WAVE".utf8) else { return nil }
        var offset = 12
        while offset + 8 <= bytes.count {
            let id = bytes[offset..<(offset + 4)]
            let size = Int(bytes[offset + 4]) | Int(bytes[offset + 5]) << 8 | Int(bytes[offset + 6]) << 16 | Int(bytes[offset + 7]) << 24
            if id.elementsEqual("fmt ".utf8) {
                guard offset + 10 <= bytes.count else { return nil }
                return Int(bytes[offset + 8]) | Int(bytes[offset + 9]) << 8
            }
            offset += 8 + size + (size & 1)
        }
        return nil
    }

    static func name(of tag: Int) -> String {
        switch tag {
        case 0x0055: "MPEG layer 3"
        case 0x0050: "MPEG"
        case 0x0000: "unknown"
        case 0x0022: "DSP Group TrueSpeech"
        case 0x0161, 0x0162, 0x0163: "Windows Media Audio"
        case 0x00FF, 0x1600, 0x1610: "AAC"
        default: "not a known encoding"
        }
    }
}
