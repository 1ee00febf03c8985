import COpus
import Foundation
import LasrCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Ogg Opus (RFC 7845) decoded with libogg and libopus's single-stream decoder.
///
/// Why not through libsndfile, which reads these files too: libsndfile decodes every
/// 20-ms packet with `opus_multistream_decode_float`, and libopus 1.3 re-derives its
/// decoder sizes on each such call, which runs the `cpuid` instruction several times.
/// Inside a virtual machine each `cpuid` traps to the hypervisor (about 5 µs on the
/// machine of docs/benchmarks.md), so decoding took about 4× longer than it needs to
/// and was a quarter of `lasr transcribe`'s time on the dev set. The single-stream
/// decoder does not do that. libsndfile still opens the file (its header, its errors,
/// `lasr info`); this reader only produces the samples, and they are the same samples:
/// the same libopus decoder at the same rate, the same pre-skip and end trimming
/// (tested against libsndfile sample for sample).
///
/// It takes channel mapping family 0 (mono or stereo, one Opus stream), which is what
/// encoders write for speech; other layouts stay with libsndfile.
package final class OggOpusFile {
    /// The rates libopus decodes to; libsndfile reports the header's input rate when it
    /// is one of them, and decodes at it.
    package static let decoderRates: Set<Int> = [8000, 12000, 16000, 24000, 48000]
    /// The longest Opus packet, 120 ms, at 48 kHz (RFC 6716 §3.2.1).
    static let maxPacketFrames = 5760

    let path: String
    package let channels: Int
    let sampleRate: Int
    private let file: UnsafeMutablePointer<FILE>
    private var sync = ogg_sync_state()
    private var stream = ogg_stream_state()
    private var decoder: OpaquePointer?
    private var serial: Int32 = 0
    /// Output frames still to drop at the start of the current link (the pre-skip).
    private var skip = 0
    private var preSkip48k: Int64 = 0
    /// Frames this link has output so far, after the pre-skip.
    private var linkFrames: Int64 = 0
    private var packetsInLink = 0
    /// The current link's last page (EOS) was read: a new BOS page now starts a chained link.
    private var linkEnded = false
    private var atEnd = false
    /// Decoded frames not yet handed out: `pending[pendingStart...]`, interleaved.
    private var pending: [Float]
    private var pendingStart = 0
    private var pendingEnd = 0

    /// Opens `path` if it is an Ogg Opus stream this reader decodes at `sampleRate`;
    /// nil when it is not (another codec, a multichannel layout, a rate libopus does
    /// not decode to), so the caller reads it with libsndfile.
    package init?(path: String, sampleRate: Int) throws {
        guard OggOpusFile.decoderRates.contains(sampleRate), let file = fopen(path, "rb") else { return nil }
        self.path = path
        self.file = file
        self.sampleRate = sampleRate
        ogg_sync_init(&sync)
        guard let head = OggOpusFile.firstPacket(file: file, sync: &sync, stream: &stream),
              let header = OpusHeader(head), header.mappingFamily == 0, (1...2).contains(header.channels)
        else {
            ogg_stream_clear(&stream)
            ogg_sync_clear(&sync)
            fclose(file)
            return nil
        }
        channels = header.channels
        pending = [Float](repeating: 0, count: OggOpusFile.maxPacketFrames * header.channels)
        serial = Int32(truncatingIfNeeded: stream.serialno)
        try startLink(header)
    }

    deinit {
        if let decoder { opus_decoder_destroy(decoder) }
        ogg_stream_clear(&stream)
        ogg_sync_clear(&sync)
        fclose(file)
    }

    /// Reads up to `frames` interleaved frames as floats; 0 at the end.
    package func read(into buffer: inout [Float], frames: Int) throws -> Int {
        var filled = 0
        while filled < frames {
            if pendingStart == pendingEnd {
                if atEnd { break }
                try decodeNextPacket()
                continue
            }
            let n = min(frames - filled, (pendingEnd - pendingStart) / channels)
            let count = n * channels
            buffer.withUnsafeMutableBufferPointer { dst in
                pending.withUnsafeBufferPointer { src in
                    (dst.baseAddress! + filled * channels).update(from: src.baseAddress! + pendingStart, count: count)
                }
            }
            pendingStart += count
            filled += n
        }
        return filled
    }

    // MARK: - Ogg pages and packets

    /// The next packet of the stream, reading pages as needed; nil at the end of the file.
    private func nextPacket(_ packet: inout ogg_packet) -> Bool {
        while true {
            let status = ogg_stream_packetout(&stream, &packet)
            if status == 1 { return true }
            // -1 is a gap (a lost page); libopus conceals nothing across it, so go on.
            if status < 0 { continue }
            var page = ogg_page()
            guard OggOpusFile.nextPage(file: file, sync: &sync, into: &page) else { return false }
            let pageSerial = ogg_page_serialno(&page)
            if ogg_page_bos(&page) != 0 && linkEnded {
                // A chained stream: a new link begins with its own headers (RFC 7845 §3).
                // Files joined with `cat` may reuse the serial number, so it is not checked.
                ogg_stream_reset_serialno(&stream, pageSerial)
                serial = pageSerial
                packetsInLink = 0
                linkEnded = false
            }
            // Pages of other logical streams (a multiplexed file) are not ours.
            guard pageSerial == serial else { continue }
            if ogg_page_eos(&page) != 0 { linkEnded = true }
            ogg_stream_pagein(&stream, &page)
        }
    }

    private func decodeNextPacket() throws {
        var packet = ogg_packet()
        guard nextPacket(&packet) else {
            atEnd = true
            if ferror(file) != 0 {
                throw LasrError(.readFailed, path: path, String(
                    format: "reading stopped by an I/O error near %.2f s", Double(linkFrames) / Double(sampleRate)))
            }
            return
        }
        packetsInLink += 1
        let bytes = UnsafeBufferPointer(start: packet.packet, count: Int(packet.bytes))
        if packetsInLink == 1 {
            guard let header = OpusHeader(bytes), header.mappingFamily == 0, header.channels == channels else {
                throw LasrError(.unsupportedEncoding, path: path,
                                "a chained Ogg stream changes codec or channel layout; lasr reads one layout per file")
            }
            try startLink(header)
            return
        }
        if packetsInLink == 2 { return }  // OpusTags: metadata only
        // Opus packets are at least one byte (RFC 6716 §3.4, R1); libopus would read
        // it as a lost packet and invent `maxPacketFrames` frames of concealment, so it is skipped.
        guard let decoder, packet.bytes > 0 else { return }
        let decoded = pending.withUnsafeMutableBufferPointer { out in
            opus_decode_float(decoder, packet.packet, Int32(packet.bytes), out.baseAddress!, Int32(OggOpusFile.maxPacketFrames), 0)
        }
        if decoded < 0 {
            let seconds = Double(linkFrames) / Double(sampleRate)
            throw LasrError(.corruptAudio, path: path, String(
                format: "Opus packet %d (near %.2f s) does not decode: %@",
                packetsInLink - 2, seconds, String(cString: opus_strerror(decoded))))
        }
        var start = 0, end = Int(decoded)
        if skip > 0 {
            start = min(skip, end)
            skip -= start
        }
        // The end of a link is trimmed to its last granule position (RFC 7845 §4.5),
        // counted at 48 kHz from the start of the link including the pre-skip.
        if packet.e_o_s != 0, packet.granulepos >= 0 {
            let total = (packet.granulepos - preSkip48k) * Int64(sampleRate) / 48000
            end = max(start, min(end, start + Int(max(0, total - linkFrames))))
        }
        linkFrames += Int64(end - start)
        pendingStart = start * channels
        pendingEnd = end * channels
    }

    private func startLink(_ header: OpusHeader) throws {
        if let decoder { opus_decoder_destroy(decoder) }
        var status: Int32 = 0
        decoder = opus_decoder_create(Int32(sampleRate), Int32(channels), &status)
        guard status == OPUS_OK, let decoder else {
            throw LasrError(.corruptAudio, path: path, "libopus cannot decode this stream: \(String(cString: opus_strerror(status)))")
        }
        if header.outputGain != 0 { _ = lasr_opus_set_gain(decoder, Int32(header.outputGain)) }
        preSkip48k = Int64(header.preSkip)
        skip = header.preSkip * sampleRate / 48000
        linkFrames = 0
        packetsInLink = 1  // the identification header was this link's first packet
    }

    /// Reads pages until one is complete; false at the end of the file.
    private static func nextPage(file: UnsafeMutablePointer<FILE>, sync: inout ogg_sync_state,
                                 into page: inout ogg_page) -> Bool {
        while true {
            switch ogg_sync_pageout(&sync, &page) {
            case 1: return true
            // Bytes were skipped to regain sync (a damaged page): the pages after it may
            // already be buffered, so ask again before reading more, or a damaged page
            // near the end would hide the pages that follow it.
            case let status where status < 0: continue
            default: break
            }
            guard let buffer = ogg_sync_buffer(&sync, 65536) else { return false }
            let n = fread(buffer, 1, 65536, file)
            if n == 0 { return false }
            ogg_sync_wrote(&sync, Int(n))
        }
    }

    /// The first packet of the first logical stream, with `stream` set up for it.
    private static func firstPacket(file: UnsafeMutablePointer<FILE>, sync: inout ogg_sync_state,
                                    stream: inout ogg_stream_state) -> [UInt8]? {
        var page = ogg_page()
        guard nextPage(file: file, sync: &sync, into: &page), ogg_page_bos(&page) != 0 else { return nil }
        ogg_stream_init(&stream, ogg_page_serialno(&page))
        ogg_stream_pagein(&stream, &page)
        var packet = ogg_packet()
        guard ogg_stream_packetout(&stream, &packet) == 1 else { return nil }
        return Array(UnsafeBufferPointer(start: packet.packet, count: Int(packet.bytes)))
    }
}

/// The identification header of an Ogg Opus stream (RFC 7845 §5.1).
struct OpusHeader {
    let channels: Int
    /// Samples at 48 kHz to drop from the start of the decoded output.
    let preSkip: Int
    /// Gain to apply, in dB in Q7.8.
    let outputGain: Int
    let mappingFamily: Int

    init?<Bytes: RandomAccessCollection>(_ bytes: Bytes) where Bytes.Element == UInt8, Bytes.Index == Int {
        guard bytes.count >= 19, bytes.prefix(8).elementsEqual("OpusHead".utf8) else { return nil }
        let b = Array(bytes.prefix(19))
        guard b[8] >> 4 == 0 else { return nil }  // major version 0; minor versions stay compatible
        channels = Int(b[9])
        preSkip = Int(b[10]) | Int(b[11]) << 8
        outputGain = Int(Int16(bitPattern: UInt16(b[16]) | UInt16(b[17]) << 8))
        mappingFamily = Int(b[18])
    }
}
