import Foundation

/// Something wrong with an audio file that was still decoded: lasr read what the file
/// holds and says what it could not read, instead of failing the file or staying silent.
public struct AudioWarning: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// The file ends before the length its header or container promises.
        case truncated
        /// Data in the middle does not decode; what follows it was decoded.
        case corrupt
    }

    public let kind: Kind
    public let path: String
    /// What was wrong and how much audio it cost, phrased for the user.
    public let reason: String

    public init(_ kind: Kind, path: String, _ reason: String) {
        self.kind = kind
        self.path = path
        self.reason = reason
    }

    /// One line, as `lasr` prints it on stderr: `PATH: warning: REASON`.
    public var description: String { "\(path): warning: \(reason)" }
}

/// Seconds with millisecond precision, as the warnings quote them.
func seconds(_ frames: Int, rate: Int) -> String {
    String(format: "%.3f s", Double(frames) / Double(max(rate, 1)))
}

/// What the RIFF/WAVE header promises: libsndfile clamps the frame count of a
/// truncated WAV to what the file holds, so the promise is read here.
struct WaveDataChunk {
    /// Bytes the `data` chunk declares.
    let declaredBytes: Int
    /// Bytes of it the file holds.
    let presentBytes: Int
    let blockAlign: Int

    var declaredFrames: Int { declaredBytes / blockAlign }

    /// The `data` chunk of `path`, or nil where it is not a RIFF/WAVE file, the chunk is
    /// not found in the first 64 KiB, or its size is a streaming writer's "unknown"
    /// (0 or 0xFFFFFFFF).
    init?(path: String) {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let fileSize = try? handle.seekToEnd(), (try? handle.seek(toOffset: 0)) != nil,
              let head = try? handle.read(upToCount: 65536), head.count >= 12 else { return nil }
        let bytes = [UInt8](head)
        guard bytes[0..<4].elementsEqual("RIFF".utf8), bytes[8..<12].elementsEqual("WAVE".utf8) else { return nil }
        func u16(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 }
        func u32(_ i: Int) -> Int { u16(i) | u16(i + 2) << 16 }
        var blockAlign: Int?
        var offset = 12
        while offset + 8 <= bytes.count {
            let size = u32(offset + 4)
            if bytes[offset..<(offset + 4)].elementsEqual("fmt ".utf8), offset + 22 <= bytes.count {
                blockAlign = u16(offset + 20)
            } else if bytes[offset..<(offset + 4)].elementsEqual("data".utf8) {
                guard let blockAlign, blockAlign > 0, size != 0, size != 0xFFFF_FFFF else { return nil }
                declaredBytes = size
                presentBytes = max(0, min(size, Int(fileSize) - (offset + 8)))
                self.blockAlign = blockAlign
                return
            }
            offset += 8 + size + (size & 1)
        }
        return nil
    }
}

/// The pages of an Ogg file checked one by one (RFC 3533): their checksums, and whether
/// the file ends with a complete end-of-stream page. libvorbis and libopus skip a damaged
/// page silently and decode the rest, and a file cut short has no last page to give its
/// length, so this scan is what tells lasr, and the user, that audio is missing.
struct OggPageScan {
    /// A stretch of bytes that is not a valid page: a checksum mismatch or lost sync.
    struct Damage {
        let offset: Int
        let length: Int
        /// The granule position of the last good page before it (-1 if none).
        let granuleBefore: Int64
    }

    var damage: [Damage] = []
    /// The file ends inside a page, at `fileSize`, of which the page needed more bytes.
    var endsInsidePage = false
    /// The last complete page is flagged end-of-stream.
    var endsWithLastPage = false
    var fileSize = 0

    /// Scans `path`; nil where it cannot be read or holds no Ogg page at all.
    init?(path: String) {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { return nil }
        fileSize = data.count
        var sawPage = false
        var lastGranule: Int64 = -1
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let b = raw.bindMemory(to: UInt8.self)
            let n = b.count
            func isCapture(_ i: Int) -> Bool { i + 4 <= n && b[i] == 0x4F && b[i + 1] == 0x67 && b[i + 2] == 0x67 && b[i + 3] == 0x53 }
            func nextCapture(after i: Int) -> Int {
                var j = i + 1
                while j < n && !isCapture(j) { j += 1 }
                return j
            }
            var offset = 0
            var damageStart: Int?
            func closeDamage(at end: Int) {
                if let start = damageStart { damage.append(Damage(offset: start, length: end - start, granuleBefore: lastGranule)) }
                damageStart = nil
            }
            while offset < n {
                guard isCapture(offset) else {
                    if damageStart == nil { damageStart = offset }
                    offset = nextCapture(after: offset)
                    continue
                }
                guard offset + 27 <= n else { endsInsidePage = true; break }
                let segments = Int(b[offset + 26])
                guard offset + 27 + segments <= n else { endsInsidePage = true; break }
                var bodyLength = 0
                for s in 0..<segments { bodyLength += Int(b[offset + 27 + s]) }
                let pageLength = 27 + segments + bodyLength
                guard offset + pageLength <= n else { endsInsidePage = true; break }
                let stored = UInt32(b[offset + 22]) | UInt32(b[offset + 23]) << 8 | UInt32(b[offset + 24]) << 16 | UInt32(b[offset + 25]) << 24
                guard b[offset + 4] == 0, OggPageScan.crc(b, offset, pageLength) == stored else {
                    if damageStart == nil { damageStart = offset }
                    offset = nextCapture(after: offset)
                    continue
                }
                closeDamage(at: offset)
                sawPage = true
                var granule: UInt64 = 0
                for k in 0..<8 { granule |= UInt64(b[offset + 6 + k]) << (8 * UInt64(k)) }
                if granule != UInt64.max { lastGranule = Int64(bitPattern: granule) }
                endsWithLastPage = b[offset + 5] & 0x04 != 0
                offset += pageLength
            }
            if endsInsidePage { endsWithLastPage = false }
            closeDamage(at: endsInsidePage ? offset : n)
        }
        guard sawPage else { return nil }
    }

    /// The Ogg checksum: CRC-32 with polynomial 0x04C11DB7, not reflected, initial value 0,
    /// over the page with its checksum field taken as zero.
    static func crc(_ b: UnsafeBufferPointer<UInt8>, _ offset: Int, _ length: Int) -> UInt32 {
        var crc: UInt32 = 0
        table.withUnsafeBufferPointer { t in
            func add(_ byte: UInt8) { crc = (crc << 8) ^ t[Int(((crc >> 24) ^ UInt32(byte)) & 0xFF)] }
            for i in offset..<(offset + 22) { add(b[i]) }
            for _ in 0..<4 { add(0) }
            for i in (offset + 26)..<(offset + length) { add(b[i]) }
        }
        return crc
    }

    private static let table: [UInt32] = (0..<256).map { i in
        var r = UInt32(i) << 24
        for _ in 0..<8 { r = r & 0x8000_0000 != 0 ? (r << 1) ^ 0x04C1_1DB7 : r << 1 }
        return r
    }
}
