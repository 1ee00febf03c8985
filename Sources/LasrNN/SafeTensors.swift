import Foundation
import LasrCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only, memory-mapped safetensors file.
///
/// Layout (huggingface/safetensors): an 8-byte little-endian header length `n`, an
/// `n`-byte JSON header mapping each tensor name to `{dtype, shape, data_offsets}`
/// (offsets relative to the end of the header), an optional `__metadata__` map of
/// strings, then the raw little-endian data. Tensors are converted to `Float` when
/// asked for; the file itself is never copied whole into memory.
public final class SafeTensorsFile {
    /// Element types lasr reads.
    public enum DType: String, Sendable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64", i64 = "I64", i32 = "I32"

        var byteSize: Int {
            switch self {
            case .f16, .bf16: 2
            case .f32, .i32: 4
            case .f64, .i64: 8
            }
        }
    }

    public struct TensorInfo: Sendable, Equatable {
        public let dtype: DType
        public let shape: [Int]
        let begin: Int
        let end: Int
        public var count: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let metadata: [String: String]
    public let tensors: [String: TensorInfo]
    private let base: UnsafeMutableRawPointer
    private let length: Int
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw LasrError(FileManager.default.fileExists(atPath: path) ? .readFailed : .fileNotFound,
                            path: path, "cannot open safetensors file: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw LasrError(.readFailed, path: path, "cannot stat safetensors file")
        }
        length = Int(st.st_size)
        guard length >= 8 else {
            throw LasrError(.invalidModel, path: path, "only \(length) bytes: too short for a safetensors header")
        }
        guard let mapped = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw LasrError(.readFailed, path: path, "cannot memory-map safetensors file")
        }
        base = mapped
        do {
            (metadata, tensors, dataStart) = try SafeTensorsFile.parseHeader(base, length: length, path: path)
        } catch {
            munmap(mapped, length)
            throw error
        }
    }

    deinit { munmap(base, length) }

    public var names: [String] { tensors.keys.sorted() }

    /// The tensor `name` as `Float`s, checked against `shape` when one is given.
    public func floats(_ name: String, shape expected: [Int]? = nil) throws -> [Float] {
        guard let info = tensors[name] else {
            throw LasrError(.invalidModel, path: path, "missing tensor '\(name)'")
        }
        if let expected, expected != info.shape {
            throw LasrError(.invalidModel, path: path,
                            "tensor '\(name)' has shape \(info.shape), the config implies \(expected)")
        }
        let src = UnsafeRawPointer(base) + dataStart + info.begin
        var out = [Float](repeating: 0, count: info.count)
        out.withUnsafeMutableBufferPointer { dst in
            for i in 0..<info.count {
                switch info.dtype {
                case .f32: dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                case .f16: dst[i] = halfToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                case .bf16: dst[i] = Float(bitPattern: UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
                case .f64: dst[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                case .i64: dst[i] = Float(Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
                case .i32: dst[i] = Float(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
                }
            }
        }
        return out
    }

    private static func parseHeader(_ base: UnsafeMutableRawPointer, length: Int, path: String) throws
        -> ([String: String], [String: TensorInfo], Int)
    {
        // Compared as UInt64: a damaged length above Int.max does not convert to Int.
        let declared = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
        guard declared > 0, declared <= UInt64(length - 8) else {
            throw LasrError(.invalidModel, path: path, "header length \(declared) (bytes 0–7) does not fit a \(length)-byte file")
        }
        let headerLength = Int(declared)
        let headerData = Data(bytes: base + 8, count: headerLength)
        guard let json = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw LasrError(.invalidModel, path: path, "header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        let dataLength = length - dataStart
        var metadata: [String: String] = [:]
        var tensors: [String: TensorInfo] = [:]
        for (name, value) in json {
            if name == "__metadata__" {
                for (k, v) in value as? [String: Any] ?? [:] { metadata[k] = v as? String ?? "\(v)" }
                continue
            }
            guard let entry = value as? [String: Any],
                  let dtypeName = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int],
                  let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw LasrError(.invalidModel, path: path, "tensor '\(name)': malformed header entry")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw LasrError(.invalidModel, path: path, "tensor '\(name)': unsupported dtype \(dtypeName)")
            }
            // A damaged shape can be negative or multiply past Int.max; both trapped later
            // (an Array of negative count, an overflowing product).
            var count = 1
            for dimension in shape {
                guard dimension >= 0 else {
                    throw LasrError(.invalidModel, path: path, "tensor '\(name)': shape \(shape) has a negative dimension")
                }
                let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
                guard !overflow else {
                    throw LasrError(.invalidModel, path: path, "tensor '\(name)': shape \(shape) has more elements than fit in memory")
                }
                count = product
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, offsets[0] >= 0, offsets[1] <= dataLength, offsets[1] - offsets[0] == bytes else {
                throw LasrError(.invalidModel, path: path,
                                "tensor '\(name)': data offsets \(offsets) do not hold \(shape) × \(dtypeName) in \(dataLength) data bytes")
            }
            tensors[name] = TensorInfo(dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
        }
        return (metadata, tensors, dataStart)
    }
}

/// IEEE 754 binary16 → binary32, subnormals and specials included.
@inline(__always)
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = Int((h >> 10) & 0x1F)
    let mantissa = UInt32(h & 0x3FF)
    if exponent == 0 {
        // Zero or subnormal: mantissa · 2^-24.
        let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign == 0 ? magnitude : -magnitude
    }
    if exponent == 31 {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (mantissa << 13))
}
