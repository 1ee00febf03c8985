import Foundation
import LasrAudio
import LasrCore

/// Sample encodings of a PCM stream.
public enum PCMEncoding: String, Sendable, CaseIterable {
    case u8, s16le, s24le, s32le, f32le, f64le

    var bytes: Int {
        switch self {
        case .u8: 1
        case .s16le: 2
        case .s24le: 3
        case .s32le, .f32le: 4
        case .f64le: 8
        }
    }
}

/// What a stream carries: its encoding, rate and channel count.
public struct PCMFormat: Sendable, Equatable {
    public var encoding: PCMEncoding
    public var sampleRate: Int
    public var channels: Int

    public init(encoding: PCMEncoding, sampleRate: Int, channels: Int) {
        self.encoding = encoding
        self.sampleRate = sampleRate
        self.channels = channels
    }

    var frameBytes: Int { encoding.bytes * channels }
}

/// Turns the bytes of stdin into float samples as they arrive: raw PCM in a declared
/// format, or a WAV stream recognized by its `RIFF` header. Streaming writers put 0
/// or 0xFFFFFFFF in the length fields; both mean "until the end of the stream".
///
/// Errors are `LasrError`s about `name` (normally "stdin") with the byte position.
public final class PCMStreamReader {
    public let name: String
    /// The format once known (immediately for raw input, after the header for WAV).
    public private(set) var format: PCMFormat?
    private let declared: PCMFormat
    private var pending: [UInt8] = []
    private var headerDone: Bool
    private var position = 0           // bytes consumed so far
    private var dataRemaining: Int?    // bytes of the WAV data chunk left, nil = until EOF
    private var declaredData: Int?     // bytes the WAV data chunk declares, nil = until EOF

    /// `detectWAV`: look for a RIFF header and take the format from it.
    public init(name: String = "stdin", declared: PCMFormat, detectWAV: Bool = true) {
        self.name = name
        self.declared = declared
        headerDone = !detectWAV
        if !detectWAV { format = declared }
    }

    /// Interleaved samples decoded from `bytes` (plus what was left over before).
    public func push(_ bytes: UnsafeRawBufferPointer) throws -> [Float] {
        pending.append(contentsOf: bytes)
        if !headerDone {
            guard try parseHeader(final: false) else { return [] }
        }
        return try decodePending()
    }

    /// Ends the stream: fails if the header never completed or bytes of a partial frame
    /// remain. A WAV stream that ends before the length its header declares is no
    /// failure (what arrived is decoded): the warning says how much was missing.
    @discardableResult
    public func finish() throws -> AudioWarning? {
        if !headerDone {
            _ = try parseHeader(final: true)
        }
        if let format, let remaining = dataRemaining, remaining > 0, let declaredData {
            pending.removeAll()  // a frame cut in two is part of the cut
            let frames = { (bytes: Int) in String(format: "%.3f s", Double(bytes / format.frameBytes) / Double(format.sampleRate)) }
            return AudioWarning(.truncated, path: name, """
                truncated: the WAV header declares \(frames(declaredData)) of audio (\(declaredData) bytes of data), \
                the stream ended after \(frames(declaredData - remaining)) (byte \(position + pending.count))
                """)
        }
        if let format, !pending.isEmpty, dataRemaining.map({ $0 > 0 }) ?? true {
            throw LasrError(.corruptAudio, path: name,
                            "\(pending.count) trailing byte(s) at byte \(position) do not make a whole frame of \(format.channels) × \(format.encoding.rawValue)")
        }
        return nil
    }

    private func decodePending() throws -> [Float] {
        guard let format else { return [] }
        var usable = pending.count - pending.count % format.frameBytes
        if let remaining = dataRemaining { usable = min(usable, remaining - remaining % format.frameBytes) }
        guard usable > 0 else {
            if let remaining = dataRemaining, remaining == 0 { pending.removeAll() }
            return []
        }
        let count = usable / format.encoding.bytes
        var out = [Float](repeating: 0, count: count)
        try pending.withUnsafeBytes { raw in
            switch format.encoding {
            case .u8:
                for i in 0..<count { out[i] = (Float(raw[i]) - 128) / 128 }
            case .s16le:
                for i in 0..<count { out[i] = Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) / 32768 }
            case .s24le:
                for i in 0..<count {
                    let b = 3 * i
                    let v = Int32(raw[b]) | Int32(raw[b + 1]) << 8 | Int32(Int8(bitPattern: raw[b + 2])) << 16
                    out[i] = Float(v) / 8_388_608
                }
            case .s32le:
                for i in 0..<count { out[i] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) / 2_147_483_648 }
            case .f32le, .f64le:
                for i in 0..<count {
                    let v: Float = format.encoding == .f32le
                        ? Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                        : Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                    // Integer PCM read as float gives NaNs, infinities and huge values: a wrong --format.
                    guard v.isFinite, abs(v) <= 1000 else {
                        throw LasrError(.corruptAudio, path: name, String(
                            format: "sample at byte %d is %@, not audio: is the stream really %@? (set --format)",
                            position + i * format.encoding.bytes, "\(v)", format.encoding.rawValue))
                    }
                    out[i] = v
                }
            }
        }
        pending.removeFirst(usable)
        position += usable
        if let remaining = dataRemaining { dataRemaining = remaining - usable }
        return out
    }

    /// Parses a RIFF/WAVE header from `pending`; false while more bytes are needed.
    private func parseHeader(final: Bool) throws -> Bool {
        func fail(_ why: String) -> LasrError { LasrError(.corruptAudio, path: name, why) }
        if pending.count < 4 {
            if final {
                if pending.isEmpty { headerDone = true; format = declared; return true }
                throw fail("stream ended after \(pending.count) byte(s), before a whole sample")
            }
            return false
        }
        guard pending[0..<4].elementsEqual("RIFF".utf8) else {
            headerDone = true
            format = declared
            return true
        }
        guard pending.count >= 12 else {
            if final { throw fail("truncated WAV header: the stream ended at byte \(pending.count)") }
            return false
        }
        guard pending[8..<12].elementsEqual("WAVE".utf8) else {
            throw fail("RIFF stream is not WAVE (bytes 8–11 are '\(String(decoding: pending[8..<12], as: UTF8.self))')")
        }
        var offset = 12
        var parsed: PCMFormat?
        while true {
            guard pending.count >= offset + 8 else {
                if final { throw fail("truncated WAV header: the stream ended at byte \(pending.count) inside the chunk list") }
                return false
            }
            let id = String(decoding: pending[offset..<(offset + 4)], as: UTF8.self)
            let size = Int(UInt32(pending[offset + 4]) | UInt32(pending[offset + 5]) << 8
                           | UInt32(pending[offset + 6]) << 16 | UInt32(pending[offset + 7]) << 24)
            if id == "data" {
                guard let parsed else { throw fail("WAV 'data' chunk at byte \(offset) comes before any 'fmt ' chunk") }
                format = parsed
                dataRemaining = (size == 0 || size == 0xFFFF_FFFF) ? nil : size
                declaredData = dataRemaining
                pending.removeFirst(offset + 8)
                position = offset + 8
                headerDone = true
                return true
            }
            guard size < 1 << 24 else { throw fail("WAV chunk '\(id)' at byte \(offset) declares \(size) bytes: not a WAV header") }
            guard pending.count >= offset + 8 + size else {
                if final { throw fail("truncated WAV header: chunk '\(id)' at byte \(offset) is cut off") }
                return false
            }
            if id == "fmt " {
                parsed = try parseFormat(Array(pending[(offset + 8)..<(offset + 8 + size)]), at: offset)
            }
            offset += 8 + size + (size & 1)
        }
    }

    private func parseFormat(_ b: [UInt8], at offset: Int) throws -> PCMFormat {
        func u16(_ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 }
        func u32(_ i: Int) -> Int { u16(i) | u16(i + 2) << 16 }
        guard b.count >= 16 else {
            throw LasrError(.corruptAudio, path: name, "WAV 'fmt ' chunk at byte \(offset) has \(b.count) bytes, needs 16")
        }
        var tag = u16(0)
        let channels = u16(2), rate = u32(4), bits = u16(14)
        if tag == 0xFFFE && b.count >= 26 { tag = u16(24) }
        guard channels > 0, rate > 0 else {
            throw LasrError(.corruptAudio, path: name, "WAV header declares \(channels) channels at \(rate) Hz")
        }
        // The stream is resampled; a damaged rate (1 Hz, 4 GHz) would make that unbounded work.
        guard Resampler.inputRates.contains(rate) else {
            throw LasrError(.corruptAudio, path: name, "WAV header at byte \(offset) declares \(rate) Hz, outside the "
                            + "\(Resampler.inputRates.lowerBound)–\(Resampler.inputRates.upperBound) Hz lasr reads")
        }
        let encoding: PCMEncoding? = switch (tag, bits) {
        case (1, 8): .u8
        case (1, 16): .s16le
        case (1, 24): .s24le
        case (1, 32): .s32le
        case (3, 32): .f32le
        case (3, 64): .f64le
        default: nil
        }
        guard let encoding else {
            throw LasrError(.unsupportedEncoding, path: name,
                            String(format: "WAV stream encoding (format tag 0x%04X, %d bits) is not PCM or float", tag, bits))
        }
        return PCMFormat(encoding: encoding, sampleRate: rate, channels: channels)
    }
}
