import CSndFile
import LasrCore

/// Writes audio files through libsndfile, block by block.
public final class AudioFileWriter {
    /// Encodings lasr writes: the ones its tests and benchmarks need to produce.
    public enum Encoding: Sendable, CaseIterable {
        case wavUInt8, wavInt16, wavInt24, wavInt32, wavFloat32, wavFloat64, flac16, oggVorbis, oggOpus

        var format: Int32 {
            switch self {
            case .wavUInt8: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_U8)
            case .wavInt16: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16)
            case .wavInt24: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_24)
            case .wavInt32: Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_32)
            case .wavFloat32: Int32(SF_FORMAT_WAV | SF_FORMAT_FLOAT)
            case .wavFloat64: Int32(SF_FORMAT_WAV | SF_FORMAT_DOUBLE)
            case .flac16: Int32(SF_FORMAT_FLAC | SF_FORMAT_PCM_16)
            case .oggVorbis: Int32(SF_FORMAT_OGG | SF_FORMAT_VORBIS)
            case .oggOpus: Int32(SF_FORMAT_OGG | SF_FORMAT_OPUS)
            }
        }
    }

    public let path: String
    public let channels: Int
    private var handle: OpaquePointer?

    public init(path: String, sampleRate: Int, channels: Int, encoding: Encoding) throws {
        self.path = path
        self.channels = channels
        var info = SF_INFO()
        info.samplerate = Int32(sampleRate)
        info.channels = Int32(channels)
        info.format = encoding.format
        guard let handle = sf_open(path, Int32(SFM_WRITE), &info) else {
            throw LasrError(.invalidArgument, path: path, "cannot write audio: \(String(cString: sf_strerror(nil)))")
        }
        self.handle = handle
    }

    deinit { close() }

    /// Appends interleaved frames (`samples.count` must be a multiple of `channels`).
    public func write(_ samples: [Float]) throws {
        guard let handle else { throw LasrError(.invalidArgument, path: path, "write after close") }
        let frames = samples.count / channels
        let written = samples.withUnsafeBufferPointer { sf_writef_float(handle, $0.baseAddress, sf_count_t(frames)) }
        if written != frames {
            throw LasrError(.readFailed, path: path, "wrote \(written) of \(frames) frames: \(String(cString: sf_strerror(handle)))")
        }
    }

    public func close() {
        if let handle { sf_close(handle) }
        handle = nil
    }
}
