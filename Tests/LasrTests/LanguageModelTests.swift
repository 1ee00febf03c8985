import Foundation
import LasrAudio
import LasrCore
import LasrDecoding
import LasrFeatures
import LasrModel
import LasrNN
import Testing

/// The language model (`LanguageModel`) and its shallow fusion into the beam search.
@Suite struct LanguageModelTests {
    static let tinyModel = TestSupport.fixture("tiny-model")
    static let defaultModel = TestSupport.packageRoot.appendingPathComponent("models/default").path

    /// A copy of `source` (a model directory) with an LM whose LSTM weights are zero, so
    /// that it predicts `log_softmax(bias)` after every prefix: a unigram LM of our choosing.
    static func withUnigramLM(_ source: String, bias: [Float], weight: Double = 0,
                              lengthNormalization: Bool? = nil, lexicon: [String]? = nil) throws -> URL {
        let dir = try TestSupport.temporaryDirectory()
        for name in ["config.yaml", "model.safetensors", "tokens.txt"] {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: dir.appendingPathComponent(name).path)
        }
        let v = bias.count, e = 2, h = 3
        try TestSupport.writeSafeTensors(dir.appendingPathComponent("lm.safetensors").path, [
            ("lm.embed.weight", [v, e], (0..<(v * e)).map { Float($0 % 7) / 7 }),
            ("lm.lstm0.weight_ih", [4 * h, e], [Float](repeating: 0, count: 4 * h * e)),
            ("lm.lstm0.weight_hh", [4 * h, h], [Float](repeating: 0, count: 4 * h * h)),
            ("lm.lstm0.bias_ih", [4 * h], [Float](repeating: 0.5, count: 4 * h)),
            ("lm.lstm0.bias_hh", [4 * h], [Float](repeating: 0, count: 4 * h)),
            ("lm.out.weight", [v, h], [Float](repeating: 0, count: v * h)),
            ("lm.out.bias", [v], bias),
        ])
        let tokens = try Data(contentsOf: dir.appendingPathComponent("tokens.txt"))
        let crc = tokens.withUnsafeBytes { UInt32(TestSupport.crc32($0)) }
        let config = try String(contentsOf: dir.appendingPathComponent("config.yaml"), encoding: .utf8)
        try (config + """
            lm:
              file: lm.safetensors
              embed_dim: \(e)
              hidden: \(h)
              layers: 1
              vocabulary_crc32: \(crc)
              weight: \(weight)
              length_bonus: 0.0
            \(lengthNormalization.map { "  length_normalization: \($0)\n" } ?? "")\(lexicon == nil ? "" : "  lexicon: lexicon.txt\n")
            """).write(to: dir.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
        if let lexicon {
            try (lexicon.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("lexicon.txt"), atomically: true, encoding: .utf8)
        }
        return dir
    }

    static func encoded(_ model: LasrModel, _ file: String = "audio/01-welcome.wav") throws -> Matrix {
        let audio = try AudioFile.load(TestSupport.packageRoot.appendingPathComponent(file).path)
        return model.encoder(LogMelExtractor(config: model.config.features).compute(audio.samples))
    }

    @Test func zeroWeightGivesExactlyTheSearchWithoutAnLM() throws {
        let plain = try LasrModel(directory: Self.tinyModel)
        var bias = [Float](repeating: -3, count: plain.vocabulary.count)
        bias[5] = 0
        let dir = try Self.withUnigramLM(Self.tinyModel, bias: bias, weight: 0)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fused = try LasrModel(directory: dir.path)
        #expect(fused.languageModel != nil && plain.languageModel == nil)
        let encoded = try Self.encoded(plain)
        for ctcWeight in [0.0, 0.3] {
            var o = DecodingOptions(plain.config.decoding)
            o.beam = 4
            o.ctcWeight = ctcWeight
            let without = BeamSearch(model: plain, options: o).decode(encoded, nBest: 4)
            #expect(DecodingOptions(fused.config.decoding, lm: fused.config.lm).lmWeight == 0)
            let with = BeamSearch(model: fused, options: o).decode(encoded, nBest: 4)
            #expect(with.map(\.tokens) == without.map(\.tokens))
            #expect(with.map(\.score) == without.map(\.score))
        }
    }

    /// Two readings the acoustics score nearly alike: an LM that prefers a token only the
    /// runner-up has must make it (or a reading with more of that token) win, and a
    /// weight of zero must leave the acoustic winner in place.
    @Test func theLMFlipsAnAcousticNearTie() throws {
        let plain = try LasrModel(directory: Self.tinyModel)
        let encoded = try Self.encoded(plain)
        var o = DecodingOptions(plain.config.decoding)
        o.beam = 6
        let nBest = BeamSearch(model: plain, options: o).decode(encoded, nBest: 6)
        try #require(nBest.count >= 2)
        let best = nBest[0]
        // The best-scored other reading with a token it uses more often than the winner.
        let counts = { (tokens: [Int], t: Int) in tokens.filter { $0 == t }.count }
        let (runnerUp, favoured) = try #require(nBest.dropFirst().lazy.compactMap { h in
            Set(h.tokens).sorted().first { counts(h.tokens, $0) > counts(best.tokens, $0) }.map { (h, $0) }
        }.first)
        var bias = [Float](repeating: -4, count: plain.vocabulary.count)
        bias[favoured] = 0
        bias[plain.vocabulary.sosEos] = -1
        let dir = try Self.withUnigramLM(Self.tinyModel, bias: bias)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fusedModel = try LasrModel(directory: dir.path)
        // Just enough weight to close the gap between the two, ranked per token as the gap is.
        let gap = best.score - runnerUp.score
        o.lmWeight = max(0.05, 4 * gap)
        o.fusionLengthNormalization = true
        let fused = try #require(BeamSearch(model: fusedModel, options: o).decode(encoded).first)
        #expect(fused.tokens != best.tokens, "gap \(gap), β \(o.lmWeight)")
        #expect(counts(fused.tokens, favoured) > counts(best.tokens, favoured))
        // The search's running LM score is the LM's own score of the sequence and its end.
        let lm = try #require(fusedModel.languageModel)
        func lmScore(_ tokens: [Int]) -> Double {
            let rows = lm.logProbabilities(after: [plain.vocabulary.sosEos] + tokens)
            return zip(tokens + [plain.vocabulary.sosEos], rows).reduce(0) { $0 + Double($1.1[$1.0]) }
        }
        #expect(abs(fused.lmLogProb - lmScore(fused.tokens)) < 1e-6 * max(1, abs(fused.lmLogProb)))
        #expect(lmScore(fused.tokens) > lmScore(best.tokens))
    }

    /// Fusion ranks by total score unless the `lm:` section says otherwise, and the search
    /// without an LM keeps `decoding.length_normalization`.
    @Test func fusionHasItsOwnRankingRule() throws {
        let bias = [Float](repeating: 0, count: 64)
        for (key, expected) in [(nil, false), (false, false), (true, true)] as [(Bool?, Bool)] {
            let dir = try Self.withUnigramLM(Self.tinyModel, bias: bias, weight: 0.5, lengthNormalization: key)
            defer { try? FileManager.default.removeItem(at: dir) }
            let model = try LasrModel(directory: dir.path)
            var o = DecodingOptions(model.config.decoding, lm: model.config.lm)
            #expect(o.fusionLengthNormalization == expected)
            #expect(o.ranksPerToken(fusing: true) == expected)
            #expect(o.ranksPerToken(fusing: false) == model.config.decoding.lengthNormalization)
            o.lmWeight = 0
            #expect(o.ranksPerToken(fusing: true) == model.config.decoding.lengthNormalization)
        }
    }

    /// An LM that gives every token the same log-probability `c` costs each hypothesis
    /// `β·c` per token and once more for its end. Ranked by total score, a bonus γ = −β·c
    /// cancels the per-token part exactly, so the fused search must find the best reading
    /// of the search without an LM ranked by total score, its score lower by `β·c` (the
    /// end), and report its total score as its ranking score (`decoding.length_normalization`
    /// is on, and must not apply).
    @Test func aFlatLMWithItsBonusLeavesTheTotalScoreRanking() throws {
        let plain = try LasrModel(directory: Self.tinyModel)
        let dir = try Self.withUnigramLM(Self.tinyModel, bias: [Float](repeating: 0, count: plain.vocabulary.count))
        defer { try? FileManager.default.removeItem(at: dir) }
        let fusedModel = try LasrModel(directory: dir.path)
        let lm = try #require(fusedModel.languageModel)
        let c = Double(lm.logProbabilities(after: [plain.vocabulary.sosEos])[0][5])
        let encoded = try Self.encoded(plain)
        for ctcWeight in [0.0, 0.3] {
            var o = DecodingOptions(plain.config.decoding)
            o.beam = 4
            o.ctcWeight = ctcWeight
            o.lengthNormalization = false
            let without = try #require(BeamSearch(model: plain, options: o).decode(encoded).first)
            o.lengthNormalization = true
            o.lmWeight = 0.7
            o.lengthBonus = -0.7 * c
            let with = try #require(BeamSearch(model: fusedModel, options: o).decode(encoded).first)
            #expect(with.tokens == without.tokens)
            #expect(with.score == with.rawScore)
            #expect(abs(with.rawScore - (without.rawScore + 0.7 * c)) < 1e-6 * max(1, abs(with.rawScore)))
        }
    }

    @Test func lexiconLooksUpWordsAndPrefixes() throws {
        let lexicon = Lexicon(words: ["weather", "we", "cloudy", "we", "", "don't", "cloud"])
        #expect(lexicon.count == 5)
        for word in ["we", "weather", "cloud", "cloudy", "don't"] { #expect(lexicon.contains(word), "\(word)") }
        for word in ["w", "wea", "clo", "cloudys", "don", "zebra", "a", ""] { #expect(!lexicon.contains(word), "\(word)") }
        for prefix in ["", "w", "wea", "weather", "c", "cloudy", "don'", "d"] { #expect(lexicon.hasPrefix(prefix), "\(prefix)") }
        for prefix in ["weathers", "x", "cloudz", "a", "dont"] { #expect(!lexicon.hasPrefix(prefix), "\(prefix)") }
    }

    /// The file is read as bytes: a sorted list (the recipe's) is taken as it is, and any
    /// other order, repeats, CRLF ends, spaces around words and blank lines read the same.
    @Test func aLexiconFileReadsAsItsSetOfWords() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let words = ["a", "café", "cloud", "cloudy", "don't", "we", "weather"]
        func load(_ text: String) throws -> Lexicon {
            let url = dir.appendingPathComponent("lexicon.txt")
            try text.write(to: url, atomically: true, encoding: .utf8)
            return try Lexicon(path: url.path)
        }
        for text in [words.joined(separator: "\n") + "\n", words.joined(separator: "\n"),
                     "weather\r\n  cloudy\t\r\n\r\nwe\ncafé\na\ncloud\ndon't\nwe\ncloud\n\n"] {
            let lexicon = try load(text)
            #expect(lexicon.count == words.count, "\(text.debugDescription)")
            for w in words { #expect(lexicon.contains(w) && lexicon.hasPrefix(w), "\(w) in \(text.debugDescription)") }
            for w in ["caf", "clouds", "dont", "", "b"] { #expect(!lexicon.contains(w), "\(w)") }
            #expect(lexicon.hasPrefix("caf") && lexicon.hasPrefix("cloudy") && !lexicon.hasPrefix("cloudz"))
        }
        // A Unicode space inside a word is refused like an ASCII one, and so is a file that is not UTF-8.
        #expect { try load("one\nno\u{00A0}break\n") } throws: { ($0 as? LasrError)?.reason.contains("line 2") == true }
        try Data([0x6F, 0x6E, 0x65, 0x0A, 0xFF, 0xFE, 0x0A]).write(to: dir.appendingPathComponent("lexicon.txt"))
        #expect {
            try Lexicon(path: dir.appendingPathComponent("lexicon.txt").path)
        } throws: { ($0 as? LasrError)?.reason.contains("UTF-8") == true }
        #expect { try load("\n \n") } throws: { ($0 as? LasrError)?.reason.contains("no words") == true }
    }

    @Test func aLexiconFileIsCheckedWhenTheModelLoads() throws {
        let bias = [Float](repeating: 0, count: 64)
        let dir = try Self.withUnigramLM(Self.tinyModel, bias: bias, weight: 0.5, lexicon: ["one", "two"])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try LasrModel(directory: dir.path).languageModel?.lexicon?.count == 2)
        try "one\n\ntwo words\n".write(to: dir.appendingPathComponent("lexicon.txt"), atomically: true, encoding: .utf8)
        #expect {
            try LasrModel(directory: dir.path)
        } throws: { error in
            let e = error as? LasrError
            return e?.reason.contains("line 3") == true && e?.path?.hasSuffix("lexicon.txt") == true
        }
        try FileManager.default.removeItem(at: dir.appendingPathComponent("lexicon.txt"))
        #expect {
            try LasrModel(directory: dir.path)
        } throws: { error in
            (error as? LasrError)?.reason.contains("lexicon") == true
        }
    }

    /// The word check, on models/default and its LM: with penalty 0 the lexicon changes
    /// nothing; with a large one, the search must leave its best reading, which spells a
    /// word outside the lexicon, for one whose every word is in it. The lexicon is the
    /// words of a runner-up reading that lacks one of the winner's words.
    @Test func theWordCheckKeepsReadingsInsideTheLexicon() throws {
        let plain = try LasrModel(directory: Self.defaultModel)
        try #require(plain.languageModel != nil, "models/default has no LM")
        var o = DecodingOptions(plain.config.decoding, lm: plain.config.lm)
        o.beam = 8
        o.lexiconPenalty = 0
        let words = { (h: Hypothesis) in plain.vocabulary.decode(h.tokens).split(separator: " ").map(String.init) }
        // The first sample whose n-best holds a runner-up without one of the best's words
        // (which sample has one depends on the shipped weights, not on what is tested).
        var found: (encoded: Matrix, nBest: [Hypothesis], best: [String], allowed: [String])?
        for sample in ["audio/04-telephone.wav", "audio/03-library.wav", "audio/02-weather.wav", "audio/01-welcome.wav"] {
            let encoded = try Self.encoded(plain, sample)
            let nBest = BeamSearch(model: plain, options: o).decode(encoded, nBest: 8)
            let best = words(try #require(nBest.first))
            if let allowed = nBest.dropFirst().map(words).first(where: { !Set(best).isSubset(of: Set($0)) }) {
                found = (encoded, nBest, best, allowed)
                break
            }
        }
        let (encoded, nBest, best, allowed) = try #require(found, "no sample's n-best has a reading that lacks a word of the best")
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["model.safetensors", "tokens.txt", "lm.safetensors"] {
            try FileManager.default.copyItem(atPath: Self.defaultModel + "/" + name, toPath: dir.appendingPathComponent(name).path)
        }
        // The lm: section comes last in config.yaml, so its keys can be appended (in place of
        // the shipped lexicon's).
        let config = try String(contentsOfFile: Self.defaultModel + "/config.yaml", encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("  lexicon") }.joined(separator: "\n")
        try (config + "\n  lexicon: lexicon.txt\n  lexicon_penalty: 0.5\n")
            .write(to: dir.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
        try (allowed.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("lexicon.txt"), atomically: true, encoding: .utf8)
        let model = try LasrModel(directory: dir.path)
        let lexicon = try #require(model.languageModel?.lexicon)
        #expect(DecodingOptions(model.config.decoding, lm: model.config.lm).lexiconPenalty == 0.5)
        let same = BeamSearch(model: model, options: o).decode(encoded, nBest: 8)
        #expect(same.map(\.tokens) == nBest.map(\.tokens))
        #expect(same.map(\.score) == nBest.map(\.score))
        o.lexiconPenalty = 20
        let checked = try #require(BeamSearch(model: model, options: o).decode(encoded).first)
        #expect(words(checked) != best)
        #expect(words(checked).allSatisfy { lexicon.contains($0) }, "\(words(checked)) against \(allowed)")
        // Without fusion (--no-lm: weight 0) there is no word check.
        o.lmWeight = 0
        let unfused = BeamSearch(model: model, options: o).decode(encoded, nBest: 8)
        o.lexiconPenalty = 0
        #expect(unfused.map(\.tokens) == BeamSearch(model: plain, options: o).decode(encoded, nBest: 8).map(\.tokens))
    }

    @Test func stepOfABatchMatchesEachSequenceAlone() throws {
        var bias = [Float](repeating: 0, count: 64)
        for i in bias.indices { bias[i] = Float(sin(Double(i))) }
        let dir = try Self.withUnigramLM(Self.tinyModel, bias: bias, weight: 0.5)
        defer { try? FileManager.default.removeItem(at: dir) }
        let lm = try #require(try LasrModel(directory: dir.path).languageModel)
        let state = lm.initialState(rows: 1)
        state.select([0, 0, 0])
        var lp: [Float] = []
        lm.step(previous: [1, 7, 9], state: state, logProbs: &lp)
        for (r, token) in [1, 7, 9].enumerated() {
            let alone = lm.logProbabilities(after: [token])[0]
            #expect(Array(lp[(r * 64)..<((r + 1) * 64)]) == alone)
            // log_softmax(bias), since the recurrent weights are zero.
            let norm = log(bias.map { exp(Double($0)) }.reduce(0, +))
            #expect(abs(Double(alone[3]) - (Double(bias[3]) - norm)) < 1e-5)
        }
    }

    /// The internal LM is the decoder with `c̄` in place of attention: where every encoder
    /// frame is the same vector, attention can only return that vector, so the two give the
    /// same log-probabilities at every step; on real audio they differ.
    @Test func theInternalLMIsTheDecoderWhereAttentionHasNoChoice() throws {
        let model = try LasrModel(directory: Self.tinyModel)
        let d = model.decoder.valueDim
        let frame = (0..<d).map { Float(sin(Double($0) * 0.7)) }
        let flat = Matrix(rows: 9, cols: d, data: Array((0..<9).map { _ in frame }.joined()))
        let tokens = [model.vocabulary.sosEos, 7, 12, 30, 5]
        func both(_ encoded: Matrix) -> [(decoder: [Float], prior: [Float])] {
            let memory = model.decoder.memory(for: encoded)
            let state = model.decoder.initialState(memory: memory)
            let ilm = model.decoder.internalLMState(memory: memory)
            var a: [Float] = [], b: [Float] = [], out: [([Float], [Float])] = []
            for token in tokens {
                model.decoder.step(previous: [token], state: state, memory: memory, logProbs: &a)
                model.decoder.step(previous: [token], internalLM: ilm, logProbs: &b)
                out.append((a, b))
            }
            return out
        }
        for (step, pair) in both(flat).enumerated() {
            #expect(closeness(pair.prior, pair.decoder) <= 1, "step \(step)")
        }
        let real = both(try Self.encoded(model))
        #expect(real.dropFirst().contains { closeness($0.prior, $0.decoder) > 1 })
    }

    /// The search adds `−μ·log p_ilm` per token and at the end, which a greedy search lets us
    /// recompute along its reading (models/default, its LM and decoder).
    @Test func theInternalLMDiscountIsAddedPerTokenAndAtTheEnd() throws {
        let model = try LasrModel(directory: Self.defaultModel)
        let lm = try #require(model.languageModel, "models/default has no LM")
        var o = DecodingOptions(model.config.decoding, lm: model.config.lm)
        o.beam = 1
        o.ctcWeight = 0
        o.lexiconPenalty = 0
        o.attentionWindow = nil
        o.internalLMWeight = 0.4
        let beta = o.lmWeight, gamma = o.lengthBonus
        let encoded = try Self.encoded(model)
        let best = try #require(BeamSearch(model: model, options: o).decode(encoded).first)
        #expect(best.tokens.count > 3)
        // The same reading stepped by hand: decoder, LM and internal LM.
        let memory = model.decoder.memory(for: encoded)
        let state = model.decoder.initialState(memory: memory)
        let ilm = model.decoder.internalLMState(memory: memory)
        let lmState = lm.initialState()
        var att: [Float] = [], ext: [Float] = [], prior: [Float] = []
        var expected = 0.0, discount = 0.0
        let eos = model.vocabulary.sosEos
        for (i, previous) in ([eos] + best.tokens).enumerated() {
            model.decoder.step(previous: [previous], state: state, memory: memory, logProbs: &att)
            lm.step(previous: [previous], state: lmState, logProbs: &ext)
            model.decoder.step(previous: [previous], internalLM: ilm, logProbs: &prior)
            let next = i < best.tokens.count ? best.tokens[i] : eos
            expected += Double(att[next]) + beta * Double(ext[next]) - 0.4 * Double(prior[next]) + (next == eos ? 0 : gamma)
            discount -= 0.4 * Double(prior[next])
        }
        #expect(abs(best.rawScore - expected) < 1e-6 * max(1, abs(expected)), "\(best.rawScore) vs \(expected)")
        #expect(discount > 0)
        // Without the discount the same reading scores exactly that much less (or the search moves).
        o.internalLMWeight = 0
        let plain = try #require(BeamSearch(model: model, options: o).decode(encoded).first)
        if plain.tokens == best.tokens { #expect(abs(plain.rawScore - (best.rawScore - discount)) < 1e-6 * max(1, abs(expected))) }
    }

    /// `lm.internal_lm_weight` is a fusion default of the model, checked when it loads.
    @Test func theInternalLMWeightIsReadFromTheLMSection() throws {
        let dir = try Self.withUnigramLM(Self.tinyModel, bias: [Float](repeating: 0, count: 64), weight: 0.3)
        defer { try? FileManager.default.removeItem(at: dir) }
        let configFile = dir.appendingPathComponent("config.yaml")
        let config = try String(contentsOf: configFile, encoding: .utf8)
        #expect(DecodingOptions(try LasrModel(directory: dir.path).config.decoding).internalLMWeight == 0)
        try (config + "  internal_lm_weight: 0.15\n").write(to: configFile, atomically: true, encoding: .utf8)
        let model = try LasrModel(directory: dir.path)
        #expect(DecodingOptions(model.config.decoding, lm: model.config.lm).internalLMWeight == 0.15)
        // A weight outside [0, 2] is refused, naming the key.
        try (config + "  internal_lm_weight: 3\n").write(to: configFile, atomically: true, encoding: .utf8)
        #expect {
            try LasrModel(directory: dir.path)
        } throws: { error in
            (error as? LasrError)?.reason.contains("internal_lm_weight") == true
        }
    }

    @Test func anLMOfAnotherVocabularyIsRefused() throws {
        let dir = try Self.withUnigramLM(Self.tinyModel, bias: [Float](repeating: 0, count: 64))
        defer { try? FileManager.default.removeItem(at: dir) }
        let tokens = dir.appendingPathComponent("tokens.txt")
        var lines = try String(contentsOf: tokens, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        lines.swapAt(10, 11)
        try lines.joined(separator: "\n").write(to: tokens, atomically: true, encoding: .utf8)
        #expect {
            try LasrModel(directory: dir.path)
        } throws: { error in
            (error as? LasrError)?.reason.contains("another vocabulary") == true
        }
    }

    /// The shipped LM against the recipe (`lasr_train.lm export --fixtures`): the
    /// log-probabilities of a sentence, step by step, computed by PyTorch on the same
    /// float16 weights.
    /// Skipped (not passed) while models/default ships without an LM.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: TestSupport.fixture("lm-parity") + "/lm-parity.safetensors"),
                   "models/default has no language model yet"))
    func shippedLMMatchesTheRecipe() throws {
        let fixture = TestSupport.fixture("lm-parity")
        let model = try LasrModel(directory: Self.defaultModel)
        let lm = try #require(model.languageModel, "models/default has LM fixtures but no lm: section")
        let file = try SafeTensorsFile(path: fixture + "/lm-parity.safetensors")
        let tokens = try file.floats("tokens").map { Int($0) }
        let expected = try file.floats("log_probs")
        let got = lm.logProbabilities(after: Array(tokens.dropLast())).flatMap { $0 }
        #expect(closeness(got, expected) <= 1)
    }
}
