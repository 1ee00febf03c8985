import Foundation
import LasrCore
import LasrNN
import Testing

@Suite struct SafeTensorsTests {
    /// Builds a safetensors file by hand, byte by byte, as the format specifies.
    func write(_ url: URL, header: String, data: [UInt8]) throws {
        var bytes: [UInt8] = []
        let h = Array(header.utf8)
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { bytes += $0 }
        bytes += h + data
        try Data(bytes).write(to: url)
    }

    @Test func readsFloat32AndFloat16() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var data: [UInt8] = []
        for v: Float in [1.5, -2, 0.25, 3] { withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 } }
        // float16: 1.0 = 0x3C00, -0.5 = 0xB800, 65504 = 0x7BFF, smallest subnormal = 0x0001
        for h: UInt16 in [0x3C00, 0xB800, 0x7BFF, 0x0001] { withUnsafeBytes(of: h.littleEndian) { data += $0 } }
        let header = #"{"__metadata__":{"format":"lasr"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[4],"data_offsets":[16,24]}}"#
        let url = dir.appendingPathComponent("t.safetensors")
        try write(url, header: header, data: data)
        let file = try SafeTensorsFile(path: url.path)
        #expect(file.metadata["format"] == "lasr")
        #expect(file.names == ["a", "b"])
        #expect(try file.floats("a", shape: [2, 2]) == [1.5, -2, 0.25, 3])
        #expect(try file.floats("b") == [1, -0.5, 65504, Float(sign: .plus, exponent: -24, significand: 1)])
        #expect {
            try file.floats("a", shape: [4])
        } throws: { ($0 as? LasrError)?.description.contains("tensor 'a' has shape [2, 2]") == true }
        #expect { try file.floats("missing") } throws: { ($0 as? LasrError)?.kind == .invalidModel }
    }

    @Test func rejectsOffsetsOutsideTheFile() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("bad.safetensors")
        try write(url, header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [0, 0, 0, 0])
        #expect { try SafeTensorsFile(path: url.path) } throws: {
            ($0 as? LasrError)?.description.contains("do not hold") == true
        }
        try Data([1, 2, 3]).write(to: url)
        #expect { try SafeTensorsFile(path: url.path) } throws: { ($0 as? LasrError)?.kind == .invalidModel }
    }
}
