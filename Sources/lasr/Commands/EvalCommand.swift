import ArgumentParser
import Foundation
import LasrAudio
import LasrCore
import LasrDecoding
import LasrEval
import LasrModel
import LasrNN
import LasrOutput

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score a model on a manifest: WER, CER, real-time factor, word timing errors.",
        discussion: """
            The manifest is JSONL, one utterance a line, with 'audio' (relative to the \
            manifest's folder), 'text', optional 'corpus' and optional 'words' \
            ([start, end, word] forced-alignment times). Every line is decoded (one file \
            per core), both sides are normalized alike (lowercase; numbers spelled out; \
            hyphens to spaces; other punctuation dropped; apostrophes kept only inside \
            words — training/README.md lists the rules), and the error rates are reported \
            per corpus and overall with substitution / deletion / insertion counts. Where \
            lines have 'words', hypothesis words are matched to them by the edit \
            alignment and the median and 90th percentile of |start| and |end| errors are \
            reported, with the bias (median signed error; positive means late). \
            --summary-json writes the same numbers for scripts, with each line's word \
            errors for paired comparisons. With --n-best N (native models) it also reports \
            the oracle WER of each corpus: per line, the reading of the beam's N best \
            closest to the reference, which bounds what any re-ranking of that list could \
            reach. Exit status 0 unless a line failed to decode.
            """)

    @Option(help: ArgumentHelp("JSONL manifest to score.", valueName: "file"))
    var manifest: String

    @OptionGroup var decoding: DecodingArguments

    @Option(help: "Utterances decoded in parallel; one per core unless set.")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Score only the first N lines.")
    var limit: Int?

    @Option(help: ArgumentHelp("Write each utterance's reference, hypothesis and edit alignment here.", valueName: "file"))
    var details: String?

    @Option(help: ArgumentHelp("Write the scores as JSON here (per corpus, overall, real-time factor, word timing, each line's word errors).",
                               valueName: "file"))
    var summaryJson: String?

    @Option(help: ArgumentHelp("Native models: also score the N best readings of each line and report their oracle WER.", valueName: "N"))
    var nBest: Int?

    func validate() throws {
        if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        if let nBest, nBest < 1 { throw ValidationError("--n-best must be at least 1") }
    }

    struct Scored: Sendable {
        var words = EditCounts()
        var chars = EditCounts()
        var timing = TimingErrors()
        var audioSeconds = 0.0
        var reference = ""
        var hypothesis = ""
        var wordOps: [EditOperation] = []
        /// Word errors of the n-best list's closest reading (with --n-best).
        var oracle = EditCounts()
        var failure: LasrError?
        var warnings: [AudioWarning] = []
    }

    func run() throws {
        let started = Date()
        let loaded = try decoding.loadAnyModel()
        var entries: [ManifestEntry]
        do {
            entries = try Manifest.read(manifest)
        } catch {
            Terminal.report(error)
            throw ExitCode(1)
        }
        if let limit { entries = Array(entries.prefix(limit)) }
        // Fail before decoding, not after, when the summary cannot be written.
        if let summaryJson, !FileManager.default.createFile(atPath: summaryJson, contents: nil) {
            Terminal.report(LasrError(.invalidArgument, path: summaryJson, "cannot create the summary file"))
            throw ExitCode(1)
        }
        try decoding.checkAlternatives(nBest, for: loaded)
        let alternatives = nBest ?? 1
        let (makeTranscriber, info) = decoding.transcribers(for: loaded, alternatives: alternatives)
        let workers = min(jobs, max(entries.count, 1))
        BLAS.setThreads(workers > 1 ? 1 : jobs)
        let list = entries

        var corpora: [String: (words: EditCounts, chars: EditCounts, count: Int)] = [:]
        var timing = TimingErrors()
        var audioSeconds = 0.0
        var failures = 0
        var perUtterance: [[String: Any]] = []
        var oracle: [String: EditCounts] = [:]  // per corpus, with --n-best
        let detailSink = try details.map { try TextSink(path: $0) }
        orderedParallelMap(count: list.count, jobs: workers, makeWorker: {
            let recognizer = makeTranscriber()
            return { i -> Scored in
                let entry = list[i]
                var scored = Scored()
                do {
                    let transcript = try recognizer.transcribe(file: entry.audioPath, progress: nil)
                    scored.audioSeconds = transcript.duration
                    scored.warnings = transcript.warnings
                    scored.reference = TextNormalizer.normalize(entry.text)
                    scored.hypothesis = TextNormalizer.normalize(transcript.text)
                    let ref = scored.reference.split(separator: " ").map(String.init)
                    let hyp = scored.hypothesis.split(separator: " ").map(String.init)
                    let aligned = EditDistance.align(ref, hyp)
                    scored.words = aligned.counts
                    scored.wordOps = aligned.operations
                    scored.chars = EditDistance.align(Array(scored.reference), Array(scored.hypothesis)).counts
                    if alternatives > 1 {
                        let readings = transcript.segments.map { s in
                            (s.alternatives?.map(\.text) ?? [s.text]).map(TextNormalizer.normalize)
                        }
                        scored.oracle = OracleErrorRate.closest(reference: ref, segments: readings)
                    }
                    if let words = entry.words {
                        scored.timing.add(reference: words,
                                          hypothesis: transcript.words.map { (start: $0.start, end: $0.end, word: $0.text) })
                    }
                } catch let error as LasrError {
                    scored.failure = error
                } catch {
                    scored.failure = LasrError(.readFailed, path: entry.audioPath, "\(error)")
                }
                return scored
            }
        }, deliver: { i, scored in
            for warning in scored.warnings { Terminal.warn(warning.description) }
            if let failure = scored.failure {
                Terminal.report(failure)
                failures += 1
                return
            }
            let corpus = list[i].corpus
            var c = corpora[corpus] ?? (EditCounts(), EditCounts(), 0)
            c.words = c.words + scored.words
            c.chars = c.chars + scored.chars
            c.count += 1
            corpora[corpus] = c
            if alternatives > 1 { oracle[corpus] = (oracle[corpus] ?? EditCounts()) + scored.oracle }
            perUtterance.append(["id": list[i].id, "corpus": corpus, "errors": scored.words.errors,
                                 "reference_words": scored.words.reference])
            timing.merge(scored.timing)
            audioSeconds += scored.audioSeconds
            if let detailSink {
                detailSink.write("id: \(list[i].id)\nREF: \(scored.reference)\nHYP: \(scored.hypothesis)\n")
                detailSink.write("ALIGN: \(Self.render(scored.wordOps, ref: scored.reference, hyp: scored.hypothesis))\n")
                detailSink.write(String(format: "WER: %.2f%% (S=%d D=%d I=%d N=%d)\n\n", 100 * scored.words.rate,
                                        scored.words.substitutions, scored.words.deletions, scored.words.insertions,
                                        scored.words.reference))
            }
        })
        detailSink?.close()
        let elapsed = Date().timeIntervalSince(started)
        report(corpora: corpora, timing: timing, audioSeconds: audioSeconds, elapsed: elapsed, info: info)
        if alternatives > 1 {
            print("oracle WER of the \(alternatives)-best (per line, the reading closest to the reference):")
            for (name, counts) in oracle.sorted(by: { $0.key < $1.key }) + [("overall", oracle.values.reduce(EditCounts(), +))] {
                print(String(format: "%@ %6.2f%%", name.padding(toLength: 34, withPad: " ", startingAt: 0), 100 * counts.rate))
            }
        }
        if let summaryJson {
            do {
                try Self.summary(corpora: corpora, timing: timing, audioSeconds: audioSeconds, elapsed: elapsed,
                                 info: info, failures: failures, perUtterance: perUtterance,
                                 oracle: alternatives > 1 ? (alternatives, oracle) : nil)
                    .write(to: URL(fileURLWithPath: summaryJson))
            } catch {
                Terminal.report(LasrError(.invalidArgument, path: summaryJson, "cannot write the summary: \(error.localizedDescription)"))
                throw ExitCode(1)
            }
        }
        if failures > 0 {
            Terminal.warn("\(failures) of \(list.count) utterances failed to decode")
            throw ExitCode(1)
        }
    }

    private func report(corpora: [String: (words: EditCounts, chars: EditCounts, count: Int)], timing: TimingErrors,
                        audioSeconds: Double, elapsed: Double, info: DecodingInfo) {
        print("model \(info.model), beam \(info.beam), ctc weight \(info.ctcWeight), attention window "
              + (info.attentionWindow.map { "-\($0[0])/+\($0[1]) frames" } ?? "off")
              + (info.lmWeight.map { ", LM weight \($0), length bonus \(info.lengthBonus ?? 0), ranked "
                    + (info.lengthNormalization ? "per token" : "by total score") } ?? "")
              + (info.lexiconPenalty.map { ", lexicon penalty \($0)" } ?? "")
              + (info.internalLMWeight.map { ", internal-LM weight \($0)" } ?? ""))
        print("corpus                               utts    WER     S     D     I     N    CER")
        for name in corpora.keys.sorted() { print(line(name, corpora[name]!)) }
        print(line("overall", Self.total(corpora)))
        print(String(format: "real-time factor: %.1f s of audio in %.1f s (model load included): %.0fx real time",
                     audioSeconds, elapsed, audioSeconds / elapsed))
        if let t = timing.summary {
            print(String(format: "word timing (%d matched words): start error median %.0f ms, p90 %.0f ms; end error median %.0f ms, p90 %.0f ms",
                         t.matchedWords, t.startMedianMs, t.startP90Ms, t.endMedianMs, t.endP90Ms))
            print(String(format: "word timing bias (median signed error, + is late): start %+.0f ms, end %+.0f ms",
                         t.startBiasMs, t.endBiasMs))
        }
    }

    /// The counts of all corpora together.
    static func total(_ corpora: [String: (words: EditCounts, chars: EditCounts, count: Int)])
        -> (words: EditCounts, chars: EditCounts, count: Int) {
        corpora.values.reduce((EditCounts(), EditCounts(), 0)) { ($0.0 + $1.words, $0.1 + $1.chars, $0.2 + $1.count) }
    }

    /// The report as JSON: error rates in percent, timing in milliseconds. `per_utterance`
    /// lists each decoded line's word errors in manifest order, so that two models can be
    /// compared utterance by utterance (a paired test, as `lasr_train.promote` does).
    static func summary(corpora: [String: (words: EditCounts, chars: EditCounts, count: Int)], timing: TimingErrors,
                        audioSeconds: Double, elapsed: Double, info: DecodingInfo, failures: Int,
                        perUtterance: [[String: Any]], oracle: (nBest: Int, counts: [String: EditCounts])? = nil) throws -> Data {
        func scores(_ c: (words: EditCounts, chars: EditCounts, count: Int)) -> [String: Any] {
            ["utterances": c.count, "wer": 100 * c.words.rate, "cer": 100 * c.chars.rate,
             "substitutions": c.words.substitutions, "deletions": c.words.deletions,
             "insertions": c.words.insertions, "reference_words": c.words.reference]
        }
        var out: [String: Any] = [
            "model": info.model, "beam": info.beam, "ctc_weight": info.ctcWeight,
            "corpora": corpora.mapValues(scores), "overall": scores(total(corpora)), "failures": failures,
            "audio_seconds": audioSeconds, "elapsed_seconds": elapsed,
            "real_time_factor": elapsed > 0 ? audioSeconds / elapsed : 0,
            "per_utterance": perUtterance,
        ]
        if let oracle {
            // Percent, as the other rates; per corpus beside their WER.
            out["n_best"] = oracle.nBest
            out["oracle_wer"] = oracle.counts.mapValues { 100 * $0.rate }
        }
        if let lmWeight = info.lmWeight {
            out["lm_weight"] = lmWeight
            out["length_bonus"] = info.lengthBonus ?? 0
            out["length_normalization"] = info.lengthNormalization
            out["lexicon_penalty"] = info.lexiconPenalty ?? 0
            out["internal_lm_weight"] = info.internalLMWeight ?? 0
        }
        if let t = timing.summary {
            out["timing"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(t))
        }
        return try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
    }

    private func line(_ name: String, _ c: (words: EditCounts, chars: EditCounts, count: Int)) -> String {
        String(format: "%@ %6d %6.2f%% %5d %5d %5d %5d %6.2f%%", name.padding(toLength: 34, withPad: " ", startingAt: 0),
               c.count, 100 * c.words.rate, c.words.substitutions, c.words.deletions, c.words.insertions,
               c.words.reference, 100 * c.chars.rate)
    }

    static func render(_ ops: [EditOperation], ref: String, hyp: String) -> String {
        let r = ref.split(separator: " "), h = hyp.split(separator: " ")
        return ops.map { op in
            switch op {
            case .match(let i, _): return String(r[i])
            case .substitution(let i, let j): return "[\(r[i])→\(h[j])]"
            case .deletion(let i): return "[-\(r[i])]"
            case .insertion(let j): return "[+\(h[j])]"
            }
        }.joined(separator: " ")
    }
}
