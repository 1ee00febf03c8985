import Foundation
import MultipartKit
import NIOCore

/// A `multipart/form-data` body: text fields and uploaded files, by field name.
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

    /// Parses `body` with the boundary of `contentType` (`multipart/form-data; boundary=…`).
    public init(contentType: String?, body: ByteBuffer) throws(APIError) {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data") else {
            throw APIError(.badRequest, "the request must be multipart/form-data (got \(contentType ?? "no Content-Type"))",
                           code: "invalid_content_type")
        }
        guard let boundary = Self.parameter("boundary", of: contentType), !boundary.isEmpty else {
            throw APIError(.badRequest, "the multipart/form-data Content-Type has no boundary", code: "invalid_content_type")
        }
        let parser = MultipartParser(boundary: boundary)
        var parts: [Part] = []
        var headers: [(String, String)] = []
        var current = ByteBuffer()
        parser.onHeader = { headers.append(($0, $1)) }
        parser.onBody = { current.writeBuffer(&$0) }
        parser.onPartComplete = {
            let disposition = headers.first { $0.0.lowercased() == "content-disposition" }?.1 ?? ""
            let type = headers.first { $0.0.lowercased() == "content-type" }?.1
            parts.append(Part(name: Self.parameter("name", of: disposition) ?? "",
                              filename: Self.parameter("filename", of: disposition), contentType: type, body: current))
            headers = []
            current = ByteBuffer()
        }
        do {
            try parser.execute(body)
        } catch {
            throw APIError(.badRequest, "the multipart/form-data body cannot be parsed: \(error)", code: "invalid_multipart")
        }
        guard !parts.isEmpty else {
            throw APIError(.badRequest, "the multipart/form-data body has no parts (is the boundary right?)", code: "invalid_multipart")
        }
        self.parts = parts
    }

    /// The first part named `name`.
    public func part(_ name: String) -> Part? { parts.first { $0.name == name } }

    /// Every value of a repeated field (`timestamp_granularities[]`).
    public func values(_ name: String) -> [String] { parts.filter { $0.name == name }.map(\.text) }

    /// A text field, nil when absent.
    public func text(_ name: String) -> String? { part(name)?.text }

    /// `key=value` or `key="value"` from a header value such as Content-Disposition.
    static func parameter(_ key: String, of header: String) -> String? {
        for item in header.split(separator: ";").dropFirst() {
            let pair = item.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == key else { continue }
            var value = pair[1].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }
}
