import Foundation
import LasrCore
import LasrDecoding

/// The alignment dumps of `lasr align` and `transcribe --alignments`: for an input
/// NAME, `NAME.attention.csv`, `NAME.tokens.csv`, `NAME.words.csv` (all segments,
/// with a `segment` column) and one heatmap per segment, `NAME.attention.svg` (or
/// `NAME.sK.attention.svg` for segment K when there are several).
/// `docs/alignments.md` documents the columns.
public enum AlignmentWriter {
    /// Seconds (from the start of the input) of encoder frame `frame` of `segment`.
    public static func time(of frame: Int, in segment: TranscriptSegment) -> Double {
        segment.start + segment.frameOffset + Double(frame) * segment.frameDuration
    }

    /// Long form, one row per token × frame: `segment,token_index,token,frame,time_s,weight`.
    public static func attentionCSV(_ t: Transcript) -> String {
        var out = CSV.row(["segment", "token_index", "token", "frame", "time_s", "weight"])
        for (s, segment) in t.segments.enumerated() {
            for (i, token) in segment.tokens.enumerated() {
                let row = segment.attention[i]
                let prefix = "\(s),\(i),\(CSV.field(token.piece)),"
                for (j, w) in row.enumerated() {
                    out += prefix + "\(j)," + CSV.seconds(time(of: j, in: segment)) + "," + String(format: "%.6g", w) + "\n"
                }
            }
        }
        return out
    }

    /// `segment,token_index,token,start_s,end_s,frame,logprob`.
    public static func tokensCSV(_ t: Transcript) -> String {
        var out = CSV.row(["segment", "token_index", "token", "start_s", "end_s", "frame", "logprob"])
        for (s, segment) in t.segments.enumerated() {
            for (i, token) in segment.tokens.enumerated() {
                out += CSV.row(["\(s)", "\(i)", token.piece, CSV.seconds(token.start), CSV.seconds(token.end),
                                "\(token.frame)", String(format: "%.4f", token.logProb)])
            }
        }
        return out
    }

    /// `segment,word_index,word,start_s,end_s,confidence`.
    public static func wordsCSV(_ t: Transcript) -> String {
        var out = CSV.row(["segment", "word_index", "word", "start_s", "end_s", "confidence"])
        for (s, segment) in t.segments.enumerated() {
            for (i, word) in segment.words.enumerated() {
                out += CSV.row(["\(s)", "\(i)", word.text, CSV.seconds(word.start), CSV.seconds(word.end),
                                String(format: "%.4f", word.confidence)])
            }
        }
        return out
    }

    /// Writes every dump for `transcript` into `directory`; returns the paths written.
    @discardableResult
    public static func write(_ transcript: Transcript, name: String, to directory: String) throws -> [String] {
        var written: [String] = []
        func put(_ text: String, _ file: String) throws {
            let path = (directory as NSString).appendingPathComponent(file)
            do {
                try text.write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw LasrError(.invalidArgument, path: path, "cannot write: \(error.localizedDescription)")
            }
            written.append(path)
        }
        try put(attentionCSV(transcript), "\(name).attention.csv")
        try put(tokensCSV(transcript), "\(name).tokens.csv")
        try put(wordsCSV(transcript), "\(name).words.csv")
        for (s, segment) in transcript.segments.enumerated() {
            let file = transcript.segments.count == 1 ? "\(name).attention.svg" : "\(name).s\(s).attention.svg"
            try put(AttentionSVG.render(segment, title: "\(name) — segment \(s)"), file)
        }
        return written
    }
}
