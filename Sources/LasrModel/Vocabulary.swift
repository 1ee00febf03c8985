import Foundation
import LasrCore

/// The model's token inventory (`tokens.txt`: one piece per line, line number = id).
///
/// Ids 0, 1, 2 are `<blank>` (CTC), `<sos/eos>` and `<unk>`. Every other entry is a
/// SentencePiece piece or a character; a piece starting with `▁` (U+2581) begins a
/// new word. Text is the concatenation of the pieces with `▁` read as a space.
public struct Vocabulary: Sendable, Equatable {
    public static let wordBoundary: Character = "\u{2581}"
    public let pieces: [String]
    public let blank = 0
    public let sosEos = 1

    public init(pieces: [String]) { self.pieces = pieces }

    public init(path: String, expectedSize: Int) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw LasrError(FileManager.default.fileExists(atPath: path) ? .invalidModel : .fileNotFound,
                            path: path, "cannot read the vocabulary")
        }
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        guard lines.count == expectedSize else {
            throw LasrError(.invalidModel, path: path, "\(lines.count) tokens, the config says \(expectedSize)")
        }
        guard Array(lines.prefix(3)) == ["<blank>", "<sos/eos>", "<unk>"] else {
            throw LasrError(.invalidModel, path: path, "lines 1–3 must be <blank>, <sos/eos>, <unk>")
        }
        pieces = lines
    }

    public var count: Int { pieces.count }

    /// Whether `id` is a real piece (not one of the three specials).
    public func isPiece(_ id: Int) -> Bool { id > 2 && id < pieces.count }

    /// Whether the piece `id` starts a new word.
    public func startsWord(_ id: Int) -> Bool { pieces[id].first == Self.wordBoundary }

    /// The piece as display text: `▁` becomes a space.
    public func text(of id: Int) -> String {
        String(pieces[id].map { $0 == Self.wordBoundary ? " " : $0 })
    }

    /// Text of a token sequence; specials are skipped.
    public func decode(_ ids: [Int]) -> String {
        ids.filter(isPiece).map(text(of:)).joined().trimmingCharacters(in: .whitespaces)
    }
}
