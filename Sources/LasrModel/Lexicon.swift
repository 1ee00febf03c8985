import Foundation
import LasrCore

/// The words of the language model's text, for the beam search's word check
/// (docs/model-format.md, "Language model"): a hypothesis that spells a word the books
/// never use — "guarrison" for garrison, "wellful" for woeful — pays a penalty the
/// moment its spelling leaves every word of the list, so the beam keeps the readings
/// that stay within English words. The token LM scores such spellings too, but one
/// piece at a time, and a rare-but-real ending costs it about as much as a made-up one.
///
/// Stored as `lexicon.txt` beside the LM, one normalized word per line (lowercase,
/// apostrophes inside words as the transcripts keep them). Held sorted in one UTF-8
/// buffer; lookups are binary searches, so a check costs about 17 comparisons for
/// 100,000 words and no allocation.
public struct Lexicon: Sendable {
    /// Every word's bytes, sorted, back to back.
    private let bytes: [UInt8]
    /// Word i is `bytes[starts[i]..<starts[i + 1]]`.
    private let starts: [Int]

    public var count: Int { starts.count - 1 }

    /// A lexicon of `words` (order and repeats do not matter; empty strings are dropped).
    public init<S: Sequence>(words: S) where S.Element == String {
        let sorted = Set(words.map { Array($0.utf8) }.filter { !$0.isEmpty }).sorted { $0.lexicographicallyPrecedes($1) }
        var bytes: [UInt8] = []
        var starts = [0]
        for w in sorted {
            bytes += w
            starts.append(bytes.count)
        }
        self.bytes = bytes
        self.starts = starts
    }

    /// Reads a word list, one word a line; blank lines are skipped.
    public init(path: String) throws {
        guard let text = FileManager.default.contents(atPath: path).flatMap({ String(data: $0, encoding: .utf8) }) else {
            throw LasrError(.invalidModel, path: path, "the lexicon the lm: section names is missing or not UTF-8 text")
        }
        // Empty lines are kept here (and dropped by init(words:)) so that an error names the file's line.
        let words = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        if let bad = words.firstIndex(where: { $0.contains(where: \.isWhitespace) }) {
            throw LasrError(.invalidModel, path: path, "line \(bad + 1): a lexicon line holds one word, got '\(words[bad])'")
        }
        self.init(words: words)
        if count == 0 { throw LasrError(.invalidModel, path: path, "the lexicon has no words") }
    }

    /// The index of the first word not ordered before `key`.
    private func lowerBound(_ key: UnsafeBufferPointer<UInt8>) -> Int {
        bytes.withUnsafeBufferPointer { all in
            var lo = 0, hi = count
            while lo < hi {
                let mid = (lo + hi) / 2
                let word = UnsafeBufferPointer(rebasing: all[starts[mid]..<starts[mid + 1]])
                if word.lexicographicallyPrecedes(key) { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }
    }

    /// Whether `word` (UTF-8) is in the list.
    public func contains(_ word: [UInt8]) -> Bool {
        word.withUnsafeBufferPointer { key in
            let i = lowerBound(key)
            return i < count && starts[i + 1] - starts[i] == key.count
                && bytes[starts[i]..<starts[i + 1]].elementsEqual(key)
        }
    }

    /// Whether some word of the list starts with `prefix` (UTF-8); the empty prefix is always one.
    public func hasPrefix(_ prefix: [UInt8]) -> Bool {
        prefix.withUnsafeBufferPointer { key in
            let i = lowerBound(key)
            return i < count && starts[i + 1] - starts[i] >= key.count
                && bytes[starts[i]..<(starts[i] + key.count)].elementsEqual(key)
        }
    }

    public func contains(_ word: String) -> Bool { contains(Array(word.utf8)) }
    public func hasPrefix(_ prefix: String) -> Bool { hasPrefix(Array(prefix.utf8)) }
}
