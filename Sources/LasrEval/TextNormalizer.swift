import Foundation

/// Text normalization for training and scoring ("lasr-v1"), the Swift twin of
/// `training/lasr_train/text.py`'s `normalize_text`; `training/README.md` lists the
/// rules. Both sides of a comparison (reference and hypothesis) go through it.
///
/// 1. Curly apostrophes become `'`; lowercase.
/// 2. Numbers are spelled out: cardinals ("1,234" → "one thousand two hundred thirty
///    four"), decimals ("3.5" → "three point five"), ordinals ("21st" → "twenty
///    first"), and four-digit years 1100–1999 and 2010–2099 ("1984" → "nineteen
///    eighty four").
/// 3. Hyphens and dashes become spaces; so do `/ \ . , ; : ! ? ( ) [ ] { } " _ | + = * & < > ~`.
/// 4. Everything but a–z, apostrophe and space is dropped.
/// 5. Apostrophes not between two letters are dropped ("boys'" → "boys", "don't" stays).
/// 6. Runs of spaces collapse; the ends are trimmed.
public enum TextNormalizer {
    public static func normalize(_ text: String) -> String {
        var t = String(text.map { "\u{2019}\u{2018}\u{02BC}`".contains($0) ? "'" : $0 }).lowercased()
        t = spellNumbers(t)
        t = String(t.map { ch -> Character in
            if "-\u{2010}\u{2011}\u{2012}\u{2013}\u{2014}\u{2015}".contains(ch) { return " " }
            if "/\\.,;:!?()[]{}\"_|+=*&<>~\t\n\r".contains(ch) { return " " }
            return ch
        })
        let kept = t.unicodeScalars.filter { ($0 >= "a" && $0 <= "z") || $0 == "'" || $0 == " " }
        let chars = Array(String(String.UnicodeScalarView(kept)))
        var cleaned = ""
        for (i, ch) in chars.enumerated() {
            if ch == "'" {
                let before = i > 0 && chars[i - 1].isLowercaseASCIILetter
                let after = i + 1 < chars.count && chars[i + 1].isLowercaseASCIILetter
                if !(before && after) { continue }
            }
            cleaned.append(ch)
        }
        return cleaned.split(separator: " ").joined(separator: " ")
    }

    /// Words of the normalized text.
    public static func words(_ text: String) -> [String] {
        normalize(text).split(separator: " ").map(String.init)
    }

    private static let ones = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                               "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
                               "eighteen", "nineteen"]
    private static let tens = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    private static let scales: [(Int, String)] = [(1_000_000_000_000, "trillion"), (1_000_000_000, "billion"),
                                                  (1_000_000, "million"), (1000, "thousand")]
    private static let irregularOrdinals = ["one": "first", "two": "second", "three": "third", "five": "fifth",
                                            "eight": "eighth", "nine": "ninth", "twelve": "twelfth"]

    private static func underThousand(_ n: Int) -> [String] {
        var n = n, words: [String] = []
        if n >= 100 { words += [ones[n / 100], "hundred"]; n %= 100 }
        if n >= 20 {
            words.append(tens[n / 10])
            if n % 10 != 0 { words.append(ones[n % 10]) }
        } else if n > 0 || words.isEmpty {
            words.append(ones[n])
        }
        return words
    }

    /// Cardinal number words: 1234 → "one thousand two hundred thirty four".
    public static func cardinal(_ n: Int) -> String {
        if n < 0 { return "minus " + cardinal(-n) }
        if n == 0 { return "zero" }
        var n = n, words: [String] = []
        for (value, name) in scales where n >= value {
            words += underThousand(n / value) + [name]
            n %= value
        }
        if n > 0 { words += underThousand(n) }
        return words.joined(separator: " ")
    }

    static func year(_ n: Int) -> String {
        let (hi, lo) = n.quotientAndRemainder(dividingBy: 100)
        if lo == 0 { return cardinal(hi) + " hundred" }
        if lo < 10 { return cardinal(hi) + " oh " + ones[lo] }
        return cardinal(hi) + " " + cardinal(lo)
    }

    static func ordinal(_ n: Int) -> String {
        var words = cardinal(n).split(separator: " ").map(String.init)
        let last = words[words.count - 1]
        if let irregular = irregularOrdinals[last] {
            words[words.count - 1] = irregular
        } else if last.hasSuffix("y") {
            words[words.count - 1] = String(last.dropLast()) + "ieth"
        } else {
            words[words.count - 1] = last + "th"
        }
        return words.joined(separator: " ")
    }

    /// Replaces every `[0-9][0-9,]*(\.[0-9]+)?(st|nd|rd|th)?` by its words, padded with spaces.
    private static func spellNumbers(_ text: String) -> String {
        let chars = Array(text)
        var out = ""
        var i = 0
        while i < chars.count {
            guard chars[i].isASCIIDigit else { out.append(chars[i]); i += 1; continue }
            var j = i + 1
            while j < chars.count && (chars[j].isASCIIDigit || chars[j] == ",") { j += 1 }
            if j + 1 < chars.count && chars[j] == "." && chars[j + 1].isASCIIDigit {
                j += 1
                while j < chars.count && chars[j].isASCIIDigit { j += 1 }
            }
            var suffix = ""
            if j + 1 < chars.count {
                let pair = String(chars[j...(j + 1)])
                if ["st", "nd", "rd", "th"].contains(pair) { suffix = pair; j += 2 }
            }
            var token = String(chars[i..<(j - suffix.count)])
            while token.hasSuffix(",") { token.removeLast() }
            let matched = String(chars[i..<j])
            let trailingComma = suffix.isEmpty && matched.count > token.count
                && matched[matched.index(matched.startIndex, offsetBy: token.count)] == ","
            let words: String
            if token.contains(".") {
                let parts = token.split(separator: ".", maxSplits: 1)
                let whole = Int(parts[0].replacingOccurrences(of: ",", with: "")) ?? 0
                words = cardinal(whole) + " point " + parts[1].map { ones[Int(String($0))!] }.joined(separator: " ")
            } else if !suffix.isEmpty {
                words = ordinal(Int(token.replacingOccurrences(of: ",", with: "")) ?? 0)
            } else if !token.contains(","), token.count == 4, let value = Int(token),
                      (1100...1999).contains(value) || (2010...2099).contains(value) {
                words = year(value)
            } else {
                words = cardinal(Int(token.replacingOccurrences(of: ",", with: "")) ?? 0)
            }
            out += " " + words + (trailingComma ? " ," : " ")
            i = j
        }
        return out
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
    var isLowercaseASCIILetter: Bool { ("a"..."z").contains(self) }
}
