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
        var bytes: [UInt8] = [], ranges: [Range<Int>] = []
        for word in words where !word.isEmpty {
            let start = bytes.count
            bytes += word.utf8
            ranges.append(start..<bytes.count)
        }
        self.init(bytes: bytes, words: ranges)
    }

    /// The words `ranges` of `bytes`, in any order, repeats allowed. A list already sorted
    /// and without repeats (as the recipe writes it) is taken as it is, in one pass.
    private init(bytes source: [UInt8], words ranges: [Range<Int>]) {
        var ranges = ranges
        source.withUnsafeBufferPointer { all in
            func word(_ r: Range<Int>) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: all[r]) }
            let ascending = zip(ranges, ranges.dropFirst()).allSatisfy { word($0).lexicographicallyPrecedes(word($1)) }
            if !ascending {
                ranges.sort { word($0).lexicographicallyPrecedes(word($1)) }
                var unique: [Range<Int>] = []
                for r in ranges where unique.last.map({ !word($0).elementsEqual(word(r)) }) ?? true { unique.append(r) }
                ranges = unique
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ranges.reduce(0) { $0 + $1.count })
        var starts = [0]
        starts.reserveCapacity(ranges.count + 1)
        for r in ranges {
            bytes += source[r]
            starts.append(bytes.count)
        }
        self.bytes = bytes
        self.starts = starts
    }

    /// Reads a word list, one word a line; blank lines are skipped, and spaces or tabs
    /// around a word (and a `\r` before the line's end) are ignored.
    ///
    /// The list is read as bytes, not as Swift strings: every `lasr` run with the LM loads
    /// it, and splitting 170,000 lines into `String`s and sorting them took about a quarter
    /// of a second, longer than transcribing a short file.
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LasrError(.invalidModel, path: path, "the lexicon the lm: section names is missing or unreadable")
        }
        let file = [UInt8](data)
        // ASCII is UTF-8; only a file with other bytes needs the full check.
        if file.contains(where: { $0 >= 0x80 }), String(bytes: file, encoding: .utf8) == nil {
            throw LasrError(.invalidModel, path: path, "the lexicon is not UTF-8 text")
        }
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0B || b == 0x0C || b == 0x0D }
        var ranges: [Range<Int>] = []
        var line = 0, start = 0
        while start < file.count {
            line += 1
            var end = file[start...].firstIndex(of: 0x0A) ?? file.count
            let next = end + 1
            var first = start
            while first < end, isSpace(file[first]) { first += 1 }
            while end > first, isSpace(file[end - 1]) { end -= 1 }
            let word = file[first..<end]
            // Lines that are not ASCII are rare; they are checked for Unicode spaces too.
            if word.contains(where: isSpace)
                || (word.contains { $0 >= 0x80 } && String(decoding: word, as: UTF8.self).contains(where: \.isWhitespace)) {
                throw LasrError(.invalidModel, path: path,
                                "line \(line): a lexicon line holds one word, got '\(String(decoding: word, as: UTF8.self))'")
            }
            if first < end { ranges.append(first..<end) }
            start = next
        }
        self.init(bytes: file, words: ranges)
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
