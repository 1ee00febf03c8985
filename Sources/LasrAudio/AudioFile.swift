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
    /// nil where the file does not say (an Ogg stream cut before its last page).
    public let frames: Int?
    /// What the header and container show to be wrong without decoding: a WAV whose
    /// data chunk promises more than the file holds, damaged or missing Ogg pages.
    public let warnings: [AudioWarning]

    public var duration: Double? { frames.map { sampleRate > 0 ? Double($0) / Double(sampleRate) : 0 } }
}

/// Decoded audio: mono samples at `sampleRate`.
public struct Audio: Sendable {
    public var samples: [Float]
    public let sampleRate: Int
    /// What could not be decoded (a truncated file, a damaged stretch); empty for a sound file.
    public var warnings: [AudioWarning]

    public init(samples: [Float], sampleRate: Int, warnings: [AudioWarning] = []) {
        self.samples = samples
        self.sampleRate = sampleRate
        self.warnings = warnings
    }

    public var duration: Double { Double(samples.count) / Double(sampleRate) }
}

/// Audio files through libsndfile: WAV (8/16/24/32-bit integer, 32/64-bit float),
/// FLAC, Ogg Vorbis, Ogg Opus, and the other formats libsndfile reads. libsndfile
/// opens each file; the samples of mono and stereo Ogg Opus come from `OggOpusFile`,
/// identical and faster.
///
/// A damaged file is decoded as far as it goes, not refused: a truncated file gives the
/// audio it holds, and where libsndfile loses its footing in the middle of a FLAC (or
/// other) stream, decoding resumes after the damage with silence in its place, so the
/// times of what follows stay right. Each such loss comes back as an `AudioWarning`.
public enum AudioFile {
    /// Frames decoded per read; bounds the working memory of `load` to a constant.
    static let blockFrames = 32768
    /// Frames read at a time while salvaging the audio just before a decoding error,
    /// and the resolution to which the end of the damage is found.
    static let salvageFrames = 256

    /// Reads the header of `path`, and checks the container where that is cheap (the
    /// WAV data chunk's length, the Ogg pages' checksums).
    public static func info(_ path: String) throws -> AudioFileInfo {
        let file = try SoundFile(path: path)
        defer { file.close() }
        if file.info.frames == 0 {
            throw LasrError(.emptyAudio, path: path, "the file contains no audio samples")
        }
        let info = file.info
        var warnings = containerWarnings(path: path, file: file, decodedFrames: nil)
        if info.frames == nil, warnings.isEmpty {
            warnings.append(AudioWarning(.truncated, path: path, "the header does not give the length (a stream cut short?)"))
        }
        return AudioFileInfo(path: info.path, container: info.container, encoding: info.encoding, sampleRate: info.sampleRate,
                             channels: info.channels, frames: info.frames, warnings: warnings)
    }

    /// Decodes `path`, downmixes it to mono and resamples it to `sampleRate`.
    ///
    /// The file is read in blocks of `blockFrames`; memory holds the output samples
    /// plus a constant, however long the file is.
    public static func load(_ path: String, sampleRate: Int = 16000) throws -> Audio {
        var output: [Float] = []
        let warnings = try stream(path, sampleRate: sampleRate, reserve: { output.reserveCapacity($0 + 16) }) { output += $0 }
        return Audio(samples: output, sampleRate: sampleRate, warnings: warnings)
    }

    /// Decodes `path` block by block, handing each block of mono samples at
    /// `sampleRate` to `body` as soon as it is resampled: memory stays at one block
    /// whatever the file's length. `reserve` learns the expected output length first
    /// (where the header gives it). Returns what could not be decoded; a file with no
    /// decodable sample at all is an error.
    @discardableResult
    public static func stream(_ path: String, sampleRate: Int = 16000, reserve: (Int) -> Void = { _ in },
                              _ body: ([Float]) throws -> Void) throws -> [AudioWarning] {
        let file = try SoundFile(path: path)
        defer { file.close() }
        let info = file.info
        var reader: any FrameReader = file
        if file.isOggOpus, let opus = try OggOpusFile(path: path, sampleRate: info.sampleRate), opus.channels == info.channels {
            reader = opus
        }
        let resampler = Resampler(inputRate: info.sampleRate, outputRate: sampleRate)
        if let frames = info.frames {
            // A damaged header can claim any frame count (2^36 in a FLAC STREAMINFO), and the
            // caller allocates what it is told: trust it only as far as the file's size allows
            // (FLAC's constant blocks, the densest coding, hold under 8192 samples a byte).
            let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            reserve(min(Resampler.outputCount(inputCount: frames, inputRate: info.sampleRate, outputRate: sampleRate),
                        8192 * min(bytes, 1 << 40)))
        }
        var interleaved = [Float](repeating: 0, count: blockFrames * info.channels)
        var mono = [Float](repeating: 0, count: blockFrames)
        var block: [Float] = []
        var warnings: [AudioWarning] = []
        // Frames of the file's timeline handed on so far, silence for undecodable stretches included.
        var total = 0
        var decoded = 0
        func deliver(_ n: Int, silence: Bool = false) throws {
            if silence {
                for i in 0..<n { mono[i] = 0 }
            } else {
                Downmix.mono(interleaved, channels: info.channels, frames: n, into: &mono)
                decoded += n
            }
            total += n
            block.removeAll(keepingCapacity: true)
            mono.withUnsafeBufferPointer { resampler.process(UnsafeBufferPointer(rebasing: $0[0..<n]), into: &block) }
            try body(block)
        }
        // libsndfile gives nothing of a read that meets damaged data (and for FLAC may end
        // the stream there without an error): read up to the damage in small steps, then
        // look for where decoding works again, with silence for what lies between.
        // False where nothing after the damage decodes.
        func recover(_ reason: String) throws -> Bool {
            if file.reopen(at: total) {
                while let m = try? file.read(into: &interleaved, frames: salvageFrames), m > 0 { try deliver(m) }
            }
            let damageStart = total
            guard let end = info.frames, end > damageStart, let resume = file.resumePoint(after: damageStart, before: end) else {
                let declared = info.frames.map { " of the \(seconds($0, rate: info.sampleRate)) the header declares" } ?? ""
                warnings.append(AudioWarning(.truncated, path: path, """
                    truncated or damaged from \(seconds(damageStart, rate: info.sampleRate)) on: decoding stopped there \
                    (\(file.lastError ?? reason)); decoded \(seconds(decoded, rate: info.sampleRate))\(declared)
                    """))
                return false
            }
            var gap = resume - damageStart
            while gap > 0 {
                let m = min(gap, blockFrames)
                try deliver(m, silence: true)
                gap -= m
            }
            warnings.append(AudioWarning(.corrupt, path: path, """
                corrupt data at \(seconds(damageStart, rate: info.sampleRate))–\(seconds(resume, rate: info.sampleRate)) \
                (\(file.lastError ?? reason)): that stretch is silence, decoding went on after it
                """))
            return file.reopen(at: resume)
        }
        // A FLAC header's length is exact, so a stream that ends before it stopped at damage.
        let exactLength = file.container == Int32(SF_FORMAT_FLAC) ? info.frames : nil
        while true {
            let n: Int
            do {
                n = try reader.read(into: &interleaved, frames: blockFrames)
            } catch let error as LasrError where reader === file && error.kind == .corruptAudio {
                if try recover(error.reason) { continue }
                break
            }
            if n == 0 {
                if let exactLength, total < exactLength, try recover("libsndfile found no frame it could decode") {
                    continue
                }
                break
            }
            try deliver(n)
        }
        warnings += containerWarnings(path: path, file: file, decodedFrames: decoded)
        if decoded == 0 {
            let why = warnings.first.map { " (\($0.reason))" } ?? ""
            throw LasrError(.emptyAudio, path: path, "the file contains no audio samples\(why)")
        }
        block.removeAll(keepingCapacity: true)
        resampler.finish(into: &block)
        try body(block)
        return warnings
    }

    /// What the container shows is missing: the WAV data chunk's promise against the
    /// file's size, the Ogg pages that fail their checksum or never came. With
    /// `decodedFrames`, the warnings also say how much audio that cost.
    static func containerWarnings(path: String, file: SoundFile, decodedFrames: Int?) -> [AudioWarning] {
        let info = file.info
        let rate = info.sampleRate
        let got = decodedFrames.map { "; decoded \(seconds($0, rate: rate))" } ?? ""
        switch file.container {
        case Int32(SF_FORMAT_WAV), Int32(SF_FORMAT_WAVEX):
            guard let chunk = WaveDataChunk(path: path), chunk.presentBytes < chunk.declaredBytes else { return [] }
            return [AudioWarning(.truncated, path: path, """
                truncated: the header declares \(seconds(chunk.declaredFrames, rate: rate)) of audio \
                (\(chunk.declaredBytes) bytes of data), the file holds \(seconds(chunk.presentBytes / chunk.blockAlign, rate: rate)) \
                (\(chunk.presentBytes) bytes)\(got)
                """)]
        case Int32(SF_FORMAT_OGG):
            guard let scan = OggPageScan(path: path) else { return [] }
            var warnings: [AudioWarning] = []
            if let first = scan.damage.first {
                let granuleRate = file.isOggOpus ? 48000 : rate
                let near = first.granuleBefore >= 0 ? ", after \(seconds(Int(first.granuleBefore), rate: granuleRate))" : ""
                let bytes = scan.damage.reduce(0) { $0 + $1.length }
                var lost = ""
                if let declared = info.frames, let decodedFrames, declared > decodedFrames {
                    lost = "; \(seconds(declared - decodedFrames, rate: rate)) of the \(seconds(declared, rate: rate)) the stream declares "
                        + "could not be decoded, so the times after it are early by as much"
                }
                warnings.append(AudioWarning(.corrupt, path: path, """
                    corrupt data: \(bytes) bytes in \(scan.damage.count) damaged stretch\(scan.damage.count == 1 ? "" : "es") \
                    (the first at byte \(first.offset)\(near)) fail the Ogg page checksum and were skipped\(lost)
                    """))
            }
            if scan.endsInsidePage {
                warnings.append(AudioWarning(.truncated, path: path,
                    "truncated: the file ends inside an Ogg page, at byte \(scan.fileSize), before the stream's last page\(got)"))
            } else if !scan.endsWithLastPage {
                warnings.append(AudioWarning(.truncated, path: path,
                    "truncated: the Ogg stream has no end-of-stream page (the file ends at byte \(scan.fileSize))\(got)"))
            }
            return warnings
        default:
            return []
        }
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
    /// libsndfile's major format (`SF_FORMAT_WAV`, `SF_FORMAT_FLAC`, `SF_FORMAT_OGG`, …).
    let container: Int32
    /// libsndfile's message for the last failed read.
    private(set) var lastError: String?

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
        container = Int32(sfInfo.format) & Int32(SF_FORMAT_TYPEMASK)
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
            // libsndfile says SF_COUNT_MAX where the length is unknown (an Ogg stream without its last page).
            frames: sfInfo.frames == Int64.max || sfInfo.frames < 0 ? nil : Int(sfInfo.frames),
            warnings: [])
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
                let message = "libsndfile: " + String(cString: sf_strerror(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
                lastError = message
                throw LasrError(.corruptAudio, path: path, "decoding failed (\(message))")
            }
            return 0
        }
        return Int(n)
    }

    /// Opens the file afresh and seeks to `frame`: after a decoding error libsndfile's
    /// decoder state is gone (a FLAC stream that lost sync does not seek), but a new
    /// handle finds the next good frame from the seek table. False where it cannot.
    func reopen(at frame: Int) -> Bool {
        close()
        var sfInfo = SF_INFO()
        guard let fresh = sf_open(path, Int32(SFM_READ), &sfInfo) else { return false }
        handle = fresh
        return frame == 0 || sf_seek(fresh, sf_count_t(frame), SEEK_SET) == sf_count_t(frame)
    }

    /// The first frame after `start` (to within `AudioFile.salvageFrames`) from which the
    /// stream decodes again, before `end`; nil where nothing after the damage decodes
    /// (a file cut short). The search doubles its step until a probe decodes, then
    /// halves the interval back: a few dozen reopenings however long the damage.
    func resumePoint(after start: Int, before end: Int) -> Int? {
        var probe = [Float](repeating: 0, count: AudioFile.salvageFrames * info.channels)
        func decodes(at frame: Int) -> Bool {
            guard reopen(at: frame), let n = try? read(into: &probe, frames: AudioFile.salvageFrames) else { return false }
            return n > 0
        }
        var bad = start, step = AudioFile.salvageFrames
        var good: Int?
        while start + step < end {
            if decodes(at: start + step) { good = start + step; break }
            bad = start + step
            step *= 2
        }
        guard var good else { return nil }
        while good - bad > AudioFile.salvageFrames {
            let mid = bad + (good - bad) / 2
            if decodes(at: mid) { good = mid } else { bad = mid }
        }
        return good
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
