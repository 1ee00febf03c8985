import Foundation
import LasrCore
import LasrDecoding
@testable import LasrModel
import Testing

/// Encoding text into Whisper's byte-level BPE (for `--prompt` and the server's
/// `prompt`): the pre-tokenizer's pieces, merges applied by rank, and the round trip;
/// plus an opt-in check against a real converted model.
@Suite struct WhisperTokenizerTests {
    /// The tiny fixture's vocabulary with `tokens` as its 50 text tokens (padded with
    /// unused fillers) and `merges` as merges.txt, in a fresh directory.
    static func tokenizer(tokens: [String], merges: [String]) throws -> WhisperTokenizer {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lasr-bpe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixture = URL(fileURLWithPath: TestSupport.fixture("tiny-whisper"))
        let vocabulary = try WhisperConfig.load(from: fixture.appendingPathComponent("config.yaml").path).vocabulary
        var lines = try String(contentsOf: fixture.appendingPathComponent("tokens.txt"), encoding: .utf8)
            .components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        precondition(tokens.count <= vocabulary.endOfText)
        let fillers = (tokens.count..<vocabulary.endOfText).map { "~filler\($0)" }
        lines.replaceSubrange(0..<vocabulary.endOfText, with: tokens + fillers)
        let tokensPath = dir.appendingPathComponent("tokens.txt").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: tokensPath, atomically: true, encoding: .utf8)
        let mergesPath = dir.appendingPathComponent("merges.txt").path
        try (["#version: 0.2"] + merges).joined(separator: "\n").write(toFile: mergesPath, atomically: true, encoding: .utf8)
        return try WhisperTokenizer(path: tokensPath, vocabulary: vocabulary, mergesPath: mergesPath)
    }

    static let letters = ["Ġ", "'"] + "abcdefghijklmnopqrstuvwxyz12".map(String.init)
    static let merged = ["ab", "bc", "abc", "Ġabc", "'s", "12"]

    static func ids(_ t: WhisperTokenizer, _ spellings: [String]) -> [Int] { spellings.map { t.spellings.firstIndex(of: $0)! } }

    @Test func mergesApplyInRankOrderNotLeftToRight() throws {
        // "b c" ranks first: a|b|c → a|bc → abc.
        let byRank = try Self.tokenizer(tokens: Self.letters + Self.merged, merges: ["b c", "a b", "a bc"])
        #expect(try byRank.encode("abc") == Self.ids(byRank, ["abc"]))
        // "a b" ranks first: a|b|c → ab|c, and no merge joins ab with c.
        let leftFirst = try Self.tokenizer(tokens: Self.letters + Self.merged, merges: ["a b", "b c", "a bc"])
        #expect(try leftFirst.encode("abc") == Self.ids(leftFirst, ["ab", "c"]))
    }

    @Test func piecesNeverMergeAcrossWordsDigitsOrContractions() throws {
        let t = try Self.tokenizer(tokens: Self.letters + Self.merged,
                                   merges: ["b c", "a bc", "Ġ abc", "' s", "1 2", "c 1", "s Ġ"])
        // " abc" keeps its space; "'s" is its own piece; "c1" and "sĠ" would merge
        // inside one piece, but letters, digits and the next word are pieces apart.
        #expect(try t.encode(" abc's abc12") == Self.ids(t, ["Ġabc", "'s", "Ġabc", "12"]))
        #expect(try t.encode("abc") == Self.ids(t, ["abc"]))
    }

    @Test func decodingTheEncodingGivesTheTextBack() throws {
        var all = Self.letters
        // Every byte has its one-character token in a real vocabulary; so here.
        for ch in WhisperTokenizer.byteSpelling.map(String.init) where !all.contains(ch) && all.count < 50 { all.append(ch) }
        let t = try Self.tokenizer(tokens: all, merges: ["a b"])
        for text in [" ab cab's 12", "  two  spaces ", "tab\tnewline\n"] {
            let encodable = text.utf8.allSatisfy { t.ids[String(WhisperTokenizer.byteSpelling[Int($0)])] != nil }
            try #require(encodable, "\(text.debugDescription) uses a byte this vocabulary lacks")
            #expect(t.decode(try t.encode(text)) == text, "\(text.debugDescription)")
        }
    }

    @Test func aModelWithoutMergesSaysSo() throws {
        let model = try WhisperModel(directory: TestSupport.fixture("tiny-whisper"))
        #expect(!model.tokenizer.canEncode)
        #expect(throws: LasrError.self) { try model.tokenizer.encode("hello") }
        let result = try TestSupport.runLasr(["transcribe", "--model", TestSupport.fixture("tiny-whisper"), "--prompt", "hello",
                                              TestSupport.packageRoot.appendingPathComponent("audio/01-welcome.wav").path])
        #expect(result.status == 1 && result.stderr.contains("no merges.txt"), "\(result.stderr)")
        let native = try TestSupport.runLasr(["transcribe", "--model", TestSupport.fixture("tiny-model"), "--prompt", "hello",
                                              TestSupport.packageRoot.appendingPathComponent("audio/01-welcome.wav").path])
        #expect(native.status == 1 && native.stderr.contains("--prompt applies to Whisper models"), "\(native.stderr)")
    }

    /// Opt-in, as in WhisperDecodingTests: `LASR_WHISPER_MODEL=models/whisper-tiny.en`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["LASR_WHISPER_MODEL"] != nil))
    func realModelEncodesAsGPT2AndFollowsAPrompt() throws {
        let model = try WhisperModel(directory: ProcessInfo.processInfo.environment["LASR_WHISPER_MODEL"]!)
        let t = model.tokenizer
        if model.config.vocabulary.englishOnly {
            // GPT-2's ids, which the English-only Whisper vocabulary keeps.
            #expect(try t.encode("Hello world") == [15496, 995])
            #expect(try t.encode(" Hello world") == [18435, 995])
        }
        let dir = TestSupport.packageRoot.appendingPathComponent("audio")
        for file in try FileManager.default.contentsOfDirectory(atPath: dir.path).filter({ $0.hasSuffix(".txt") }) {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            let ids = try t.encode(text)
            #expect(t.decode(ids) == text)
            // BPE joins bytes into whole words here: far fewer tokens than characters.
            #expect(ids.count * 3 < text.count, "\(file): \(ids.count) tokens for \(text.count) characters")
        }
        // Without a prompt tiny.en hears "the client" at the end of this file; told of the plan, it writes "plan".
        var options = WhisperOptions(model.config)
        options.prompt = try t.encode(" We talk about the plan.")
        let prompted = try WhisperRecognizer(model: model, options: options)
            .transcribe(file: dir.appendingPathComponent("04-telephone.wav").path, progress: nil)
        #expect(prompted.text.contains("the plan"), "\(prompted.text)")
    }
}
