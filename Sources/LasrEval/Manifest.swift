import Foundation
import LasrCore

/// One line of a JSONL manifest (the format of `../shared/speech/*.jsonl`).
public struct ManifestEntry: Sendable {
    public var id: String
    /// Absolute or manifest-relative path resolved against the manifest's folder.
    public var audioPath: String
    public var text: String
    public var corpus: String
    /// Forced-alignment word times `(start, end, word)`, when the line has them.
    public var words: [(start: Double, end: Double, word: String)]?
}

public enum Manifest {
    /// Reads `path`; a malformed line is an error naming its line number.
    public static func read(_ path: String) throws -> [ManifestEntry] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw LasrError(FileManager.default.fileExists(atPath: path) ? .readFailed : .fileNotFound,
                            path: path, "cannot read manifest")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        var entries: [ManifestEntry] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any] else {
                throw LasrError(.invalidArgument, path: path, "line \(number + 1): not a JSON object")
            }
            guard let audio = object["audio"] as? String, let transcript = object["text"] as? String else {
                throw LasrError(.invalidArgument, path: path, "line \(number + 1): needs string fields 'audio' and 'text'")
            }
            let resolved = audio.hasPrefix("/") ? audio : base.appendingPathComponent(audio).path
            var words: [(Double, Double, String)]?
            if let list = object["words"] as? [[Any]] {
                words = try list.map { item in
                    guard item.count == 3, let s = (item[0] as? NSNumber)?.doubleValue,
                          let e = (item[1] as? NSNumber)?.doubleValue, let w = item[2] as? String else {
                        throw LasrError(.invalidArgument, path: path, "line \(number + 1): 'words' entries must be [start, end, word]")
                    }
                    return (s, e, w)
                }
            }
            entries.append(ManifestEntry(id: object["id"] as? String ?? "line \(number + 1)", audioPath: resolved,
                                         text: transcript, corpus: object["corpus"] as? String ?? "all",
                                         words: words.map { $0.map { (start: $0.0, end: $0.1, word: $0.2) } }))
        }
        return entries
    }
}
