import Foundation
import LasrDecoding
import LasrModel
import LasrOutput
import SwiftCSV
import Testing

/// A hand-made transcript with awkward text: commas, quotes and a line break.
func sampleTranscript() -> Transcript {
    func word(_ text: String, _ start: Double, _ end: Double) -> TranscriptWord {
        TranscriptWord(text: text, start: start, end: end, confidence: 0.9)
    }
    let words1 = [word("he", 0.10, 0.25), word("said,", 0.25, 0.55), word("\"hi\"", 0.60, 0.90),
                  word("and", 2.00, 2.20), word("left", 2.20, 2.60)]
    let words2 = (0..<14).map { i in word("word\(i)", 20.0 + Double(i) * 0.5, 20.0 + Double(i) * 0.5 + 0.4) }
    func segment(_ start: Double, _ end: Double, _ text: String, _ words: [TranscriptWord]) -> TranscriptSegment {
        TranscriptSegment(start: start, end: end, text: text, words: words, tokens: [], attention: [],
                          frameDuration: 0.04, frameOffset: 0.0125, score: -0.5)
    }
    return Transcript(source: "/tmp/sample.wav", duration: 30, segments: [
        segment(0, 20, "he said, \"hi\"\nand left", words1),
        segment(20, 30, words2.map(\.text).joined(separator: " "), words2),
    ])
}

@Suite struct TranscriptFormatTests {
    let info = DecodingInfo(model: "models/default", options: DecodingOptions(
        beam: 8, ctcWeight: 0.3, lengthNormalization: true, maxLenRatio: 0.5, eosThreshold: 1.5))

    @Test func csvSurvivesCommasQuotesAndNewlines() throws {
        let text = try TranscriptWriter.render(sampleTranscript(), as: .csv, info: info)
        let csv = try CSV<Named>(string: text)
        #expect(csv.header == ["start_s", "end_s", "text"])
        #expect(csv.rows.count == 2)
        #expect(csv.rows[0]["text"] == "he said, \"hi\"\nand left")
        #expect(csv.rows[1]["start_s"] == "20.000")
    }

    @Test func jsonDecodesBack() throws {
        let text = try TranscriptWriter.render(sampleTranscript(), as: .json, info: info)
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        let segments = object["segments"] as! [[String: Any]]
        #expect(segments.count == 2)
        let words = segments[0]["words"] as! [[String: Any]]
        #expect(words.count == 5 && words[1]["word"] as? String == "said,")
        #expect(words[2]["start"] as? Double == 0.6)
        let decoding = object["decoding"] as! [String: Any]
        #expect(decoding["beam"] as? Int == 8 && decoding["model"] as? String == "models/default")
        #expect(object["text"] as? String == sampleTranscript().text)
        // The n-best list appears only where the recognizer kept one.
        #expect(segments.allSatisfy { $0["alternatives"] == nil })
        var transcript = sampleTranscript()
        transcript.segments[1].alternatives = [.init(text: transcript.segments[1].text, score: -0.5),
                                               .init(text: "an other reading", score: -0.75)]
        let withList = try JSONSerialization.jsonObject(with: Data(TranscriptWriter.render(transcript, as: .json, info: info).utf8))
        let listed = try #require(((withList as? [String: Any])?["segments"] as? [[String: Any]])?[1]["alternatives"] as? [[String: Any]])
        #expect(listed.map { $0["text"] as? String } == [transcript.segments[1].text, "an other reading"])
        #expect(listed.map { $0["score"] as? Double } == [-0.5, -0.75])
    }

    /// SRT: numbered blocks, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, text, blank line; cues in order.
    @Test func srtFollowsItsGrammar() throws {
        let text = try TranscriptWriter.render(sampleTranscript(), as: .srt, info: info)
        let blocks = text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        let timing = try Regex(#"^(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)$"#)
        var previousEnd = -1.0
        for (i, block) in blocks.enumerated() {
            let lines = block.split(separator: "\n").map(String.init)
            #expect(lines.count == 3, "block \(i + 1): \(lines)")
            #expect(lines[0] == "\(i + 1)")
            let match = try #require(try timing.wholeMatch(in: lines[1]))
            let start = seconds(match.output, 1), end = seconds(match.output, 5)
            #expect(start < end && start >= previousEnd)
            previousEnd = end
            #expect(!lines[2].isEmpty && lines[2].count <= 42)
        }
        #expect(blocks.count >= 4)  // the pause at 0.9–2.0 s, the segment break and the length limit all cut
    }

    @Test func vttFollowsItsGrammar() throws {
        let text = try TranscriptWriter.render(sampleTranscript(), as: .vtt, info: info)
        #expect(text.hasPrefix("WEBVTT\n\n"))
        let timing = try Regex(#"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)$"#)
        let cues = text.dropFirst("WEBVTT\n\n".count).components(separatedBy: "\n\n").filter { !$0.isEmpty }
        var previousEnd = -1.0
        for cue in cues {
            let lines = cue.split(separator: "\n").map(String.init)
            let match = try #require(try timing.wholeMatch(in: lines[0]))
            let start = seconds(match.output, 1), end = seconds(match.output, 5)
            #expect(start < end && start >= previousEnd)
            previousEnd = end
        }
        #expect(TranscriptWriter.timestamp(3725.0456, separator: ".") == "01:02:05.046")
    }

    func seconds(_ output: AnyRegexOutput, _ first: Int) -> Double {
        let parts = (first..<(first + 4)).map { Double(output[$0].substring.map(String.init) ?? "0")! }
        return parts[0] * 3600 + parts[1] * 60 + parts[2] + parts[3] / 1000
    }
}

@Suite struct AlignmentDumpTests {
    func transcript() throws -> (LasrModel, Transcript) {
        let model = try LasrModel(directory: TestSupport.fixture("tiny-model"))
        let path = TestSupport.packageRoot.appendingPathComponent("audio/02-weather.wav").path
        return (model, try Recognizer(model: model).transcribe(file: path))
    }

    @Test func attentionRowsSumToOneAndFramesFollowTheStride() throws {
        let (model, t) = try transcript()
        let csv = try CSV<Named>(string: AlignmentWriter.attentionCSV(t))
        #expect(csv.header == ["segment", "token_index", "token", "frame", "time_s", "weight"])
        var sums: [String: Double] = [:]
        var times: [String: [Int: Double]] = [:]
        for row in csv.rows {
            let key = row["segment"]! + "/" + row["token_index"]!
            sums[key, default: 0] += Double(row["weight"]!)!
            times[key, default: [:]][Int(row["frame"]!)!] = Double(row["time_s"]!)!
        }
        #expect(!sums.isEmpty)
        for (key, sum) in sums { #expect(abs(sum - 1) < 1e-3, "row \(key) sums to \(sum)") }
        for (_, byFrame) in times {
            for (frame, time) in byFrame {
                #expect(abs(time - (0.0125 + Double(frame) * model.frameDuration)) < 0.0006)
            }
        }
        let tokens = try CSV<Named>(string: AlignmentWriter.tokensCSV(t))
        #expect(tokens.header == ["segment", "token_index", "token", "start_s", "end_s", "frame", "logprob"])
        #expect(tokens.rows.count == t.segments.flatMap(\.tokens).count)
        let words = try CSV<Named>(string: AlignmentWriter.wordsCSV(t))
        #expect(words.header == ["segment", "word_index", "word", "start_s", "end_s", "confidence"])
        #expect(words.rows.count == t.words.count)
    }

    @Test func svgRendersInABrowserGradeRenderer() throws {
        let (_, t) = try transcript()
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let written = try AlignmentWriter.write(t, name: "weather", to: dir.path)
        let svg = try #require(written.first { $0.hasSuffix(".svg") })
        let png = dir.appendingPathComponent("weather.png").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["rsvg-convert", "-o", png, svg]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "rsvg-convert: \(message)")
        let size = (try FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0
        #expect(size > 1000)
    }

    @Test func transcribeWritesEveryFormatWithTheInputsName() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = TestSupport.packageRoot.appendingPathComponent("audio/01-welcome.wav").path
        let run = try TestSupport.runLasr(["transcribe", input, "--model", TestSupport.fixture("tiny-model"),
                                           "--output-format", "all", "--output-dir", dir.path,
                                           "--alignments", dir.appendingPathComponent("align").path])
        #expect(run.status == 0, "\(run.stderr)")
        for ext in ["txt", "json", "srt", "vtt", "csv"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("01-welcome.\(ext)").path), "\(ext)")
        }
        for file in ["01-welcome.attention.csv", "01-welcome.tokens.csv", "01-welcome.words.csv", "01-welcome.attention.svg"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("align/\(file)").path), "\(file)")
        }
        let bad = try TestSupport.runLasr(["transcribe", input, "--model", TestSupport.fixture("tiny-model"),
                                           "--output-format", "txt,doc"])
        #expect(bad.status != 0 && bad.stderr.contains("output-format"))
    }
}
