import Foundation
import NIOCore

/// A `multipart/form-data` body (RFC 7578, on the syntax of RFC 2046 §5.1.1): text
/// fields and uploaded files, by field name.
///
/// Each part's body is a slice of the request's buffer, not a copy. The parser looks
/// for the delimiter with `memchr` and `memcmp` rather than stepping a state machine
/// byte by byte: an upload is megabytes of audio in which the delimiter's first byte
/// is rare, and a byte-at-a-time parser cost more CPU per upload than the HTTP
/// handling around it (docs/benchmarks.md).
public struct MultipartForm: Sendable {
    /// One part of the form.
    public struct Part: Sendable {
        public var name: String
        /// The client's file name, for a file part; only ever used in messages and as a hint of the format.
        public var filename: String?
        public var contentType: String?
        public var body: ByteBuffer

        public var text: String { String(buffer: body) }
    }

    public var parts: [Part]

    /// At most this many parts: a form of a file and a few fields never needs more, and
    /// a body of millions of empty parts should not become millions of values.
    static let maxParts = 1000
    /// At most this many bytes of headers per part.
    static let maxHeaderBytes = 16 << 10

    /// Parses `body` with the boundary of `contentType` (`multipart/form-data; boundary=…`).
    public init(contentType: String?, body: ByteBuffer) throws(APIError) {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data") else {
            throw APIError(.badRequest, "the request must be multipart/form-data (got \(contentType ?? "no Content-Type"))",
                           code: "invalid_content_type")
        }
        guard let boundary = Self.parameter("boundary", of: contentType), !boundary.isEmpty else {
            throw APIError(.badRequest, "the multipart/form-data Content-Type has no boundary", code: "invalid_content_type")
        }
        // RFC 2046: 1 to 70 characters. A longer one is refused rather than searched for.
        guard boundary.utf8.count <= 70 else {
            throw APIError(.badRequest, "the multipart/form-data boundary is longer than 70 characters", code: "invalid_content_type")
        }
        let result: Result<[Part], APIError> = body.withUnsafeReadableBytes { raw in
            do throws(APIError) {
                return .success(try Self.parse(raw, boundary: Array(boundary.utf8), body: body))
            } catch {
                return .failure(error)
            }
        }
        parts = try result.get()
        guard !parts.isEmpty else {
            throw APIError(.badRequest, "the multipart/form-data body has no parts (is the boundary right?)", code: "invalid_multipart")
        }
    }

    private static func invalid(_ reason: String) -> APIError {
        APIError(.badRequest, "the multipart/form-data body cannot be parsed: \(reason)", code: "invalid_multipart")
    }

    /// The parts of `raw` (the readable bytes of `body`, whose slices the parts become).
    private static func parse(_ raw: UnsafeRawBufferPointer, boundary: [UInt8], body: ByteBuffer) throws(APIError) -> [Part] {
        let dash = UInt8(ascii: "-"), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        // The delimiter between parts is CRLF "--" boundary; the first may open the body without the CRLF.
        let delimiter = [cr, lf, dash, dash] + boundary
        func matches(_ pattern: ArraySlice<UInt8>, at i: Int) -> Bool {
            guard i >= 0, i + pattern.count <= raw.count else { return false }
            return pattern.withUnsafeBytes { memcmp(raw.baseAddress! + i, $0.baseAddress!, pattern.count) == 0 }
        }
        var position: Int
        if matches(delimiter.dropFirst(2), at: 0) {
            position = delimiter.count - 2
        } else if let first = find(delimiter[...], in: raw, from: 0) {
            position = first + delimiter.count  // after a preamble, which is ignored
        } else {
            throw invalid("the boundary '\(String(decoding: boundary, as: UTF8.self))' of the Content-Type never occurs in it")
        }

        var parts: [Part] = []
        while true {
            // After a delimiter: "--" closes the body; else optional padding, then CRLF.
            if matches([dash, dash], at: position) { return parts }
            while position < raw.count, raw[position] == UInt8(ascii: " ") || raw[position] == UInt8(ascii: "\t") { position += 1 }
            guard matches([cr, lf], at: position) else {
                throw position >= raw.count ? invalid("it ends after a boundary, without the closing '--'")
                                            : invalid("a boundary is followed by something other than a line break (byte \(position))")
            }
            position += 2
            guard parts.count < maxParts else { throw invalid("it has more than \(maxParts) parts") }

            // Headers: lines up to an empty one.
            guard let headersEnd = find([cr, lf, cr, lf], in: raw, from: position - 2) else {
                throw invalid("part \(parts.count + 1)'s headers never end (no empty line)")
            }
            guard headersEnd - position <= maxHeaderBytes else {
                throw invalid("part \(parts.count + 1)'s headers are longer than \(maxHeaderBytes) bytes")
            }
            var disposition = "", type: String?
            if headersEnd > position {
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: raw[position..<headersEnd]), as: UTF8.self)
                for line in text.split(separator: "\r\n", omittingEmptySubsequences: true) {
                    guard let colon = line.firstIndex(of: ":") else {
                        throw invalid("part \(parts.count + 1) has a header line without ':'")
                    }
                    let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
                    let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                    if name == "content-disposition" { disposition = value } else if name == "content-type" { type = value }
                }
            }
            let bodyStart = headersEnd + 4
            guard let bodyEnd = find(delimiter[...], in: raw, from: bodyStart) else {
                throw invalid("part \(parts.count + 1) never ends: the body stops before its closing boundary")
            }
            parts.append(Part(name: parameter("name", of: disposition) ?? "", filename: parameter("filename", of: disposition),
                              contentType: type, body: body.getSlice(at: body.readerIndex + bodyStart, length: bodyEnd - bodyStart)!))
            position = bodyEnd + delimiter.count
        }
    }

    /// The first index from `start` at which `needle` (whose first byte is rare in audio) begins.
    static func find(_ needle: ArraySlice<UInt8>, in raw: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard let first = needle.first, needle.count <= raw.count else { return nil }
        var i = max(0, start)
        let last = raw.count - needle.count
        while i <= last {
            guard let hit = memchr(raw.baseAddress! + i, Int32(first), last - i + 1) else { return nil }
            let at = raw.baseAddress!.distance(to: UnsafeRawPointer(hit))
            if needle.withUnsafeBytes({ memcmp(raw.baseAddress! + at, $0.baseAddress!, needle.count) }) == 0 { return at }
            i = at + 1
        }
        return nil
    }

    /// The first part named `name`.
    public func part(_ name: String) -> Part? { parts.first { $0.name == name } }

    /// Every value of a repeated field (`timestamp_granularities[]`).
    public func values(_ name: String) -> [String] { parts.filter { $0.name == name }.map(\.text) }

    /// A text field, nil when absent.
    public func text(_ name: String) -> String? { part(name)?.text }

    /// `key=value` or `key="value"` from a header value such as Content-Disposition. A
    /// quoted value may hold `;`. A backslash is itself: browsers write a `"` in a file
    /// name as `%22` (the HTML standard's form-data encoding), not as `\"`.
    static func parameter(_ key: String, of header: String) -> String? {
        var rest = Substring(header)
        // The first item is the type itself (form-data, multipart/form-data).
        guard let semicolon = rest.firstIndex(of: ";") else { return nil }
        rest = rest[rest.index(after: semicolon)...]
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " || $0 == "\t" || $0 == ";" }
            let nameEnd = rest.firstIndex { $0 == "=" || $0 == ";" } ?? rest.endIndex
            let name = rest[..<nameEnd].trimmingCharacters(in: .whitespaces).lowercased()
            rest = rest[nameEnd...]
            var value = ""
            if rest.first == "=" {
                rest = rest.dropFirst().drop { $0 == " " || $0 == "\t" }
                if rest.first == "\"" {
                    rest = rest.dropFirst()
                    let end = rest.firstIndex(of: "\"") ?? rest.endIndex
                    value = String(rest[..<end])
                    rest = rest[end...].drop { $0 != ";" }
                } else {
                    let end = rest.firstIndex(of: ";") ?? rest.endIndex
                    value = rest[..<end].trimmingCharacters(in: .whitespaces)
                    rest = rest[end...]
                }
            }
            if name == key { return value }
        }
        return nil
    }
}
