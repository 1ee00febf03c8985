import Foundation
import LasrCore
import LasrDecoding
import LasrFeatures
import LasrModel
import LasrNN
import Testing

/// The Swift engine against the PyTorch recipe, on fixtures the recipe exported
/// (`lasr_train.export --fixtures`): features, encoder output, CTC log-probabilities,
/// the attention weights and log-probabilities of the first greedy steps, and the
/// beam-search n-best list.
struct ParityCase: CustomTestStringConvertible, Sendable {
    let name: String
    let modelDirectory: String
    let fixtureDirectory: String
    var testDescription: String { name }

    static let all: [ParityCase] = [
        ParityCase(name: "tiny model, location-aware attention (train-smoke)",
                   modelDirectory: TestSupport.fixture("tiny-model"),
                   fixtureDirectory: TestSupport.fixture("tiny-model-parity")),
        ParityCase(name: "tiny model, dot-product attention (train-smoke)",
                   modelDirectory: TestSupport.fixture("tiny-dot-model"),
                   fixtureDirectory: TestSupport.fixture("tiny-dot-model-parity")),
        ParityCase(name: "tiny model, a random Whisper layer as its encoder (train-smoke, encoder.type whisper)",
                   modelDirectory: TestSupport.fixture("tiny-hybrid-model"),
                   fixtureDirectory: TestSupport.fixture("tiny-hybrid-model-parity")),
        ParityCase(name: "models/default",
                   modelDirectory: TestSupport.packageRoot.appendingPathComponent("models/default").path,
                   fixtureDirectory: TestSupport.fixture("model-parity")),
    ].filter { FileManager.default.fileExists(atPath: $0.fixtureDirectory + "/parity.json") }
}

/// `|a − b| ≤ atol + rtol·|b|` elementwise; returns the worst excess ratio (≤ 1 passes).
func closeness(_ a: [Float], _ b: [Float], rtol: Float = 1e-3, atol: Float = 1e-4) -> Float {
    precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
    var worst: Float = 0
    for i in a.indices { worst = max(worst, abs(a[i] - b[i]) / (atol + rtol * abs(b[i]))) }
    return worst
}

@Suite struct ModelParityTests {
    struct Expected: Decodable {
        struct NBest: Decodable { let tokens: [Int]; let text: String; let score: Double }
        /// The search settings the recipe decoded with; a model directory's config may
        /// have moved on since (models/default decodes with a wider beam than its fixture).
        struct Decoding: Decodable {
            let beam: Int; let ctc_weight: Double; let length_normalization: Bool
            let max_len_ratio: Double; let eos_threshold: Double
        }
        let greedy_tokens: [Int]
        let nbest: [NBest]
        let decoding: Decoding?
    }

    func load(_ c: ParityCase) throws -> (LasrModel, SafeTensorsFile, Expected) {
        let model = try LasrModel(directory: c.modelDirectory)
        let tensors = try SafeTensorsFile(path: c.fixtureDirectory + "/parity.safetensors")
        let json = try Data(contentsOf: URL(fileURLWithPath: c.fixtureDirectory + "/parity.json"))
        return (model, tensors, try JSONDecoder().decode(Expected.self, from: json))
    }

    func matrix(_ file: SafeTensorsFile, _ name: String) throws -> Matrix {
        let shape = try #require(file.tensors[name]).shape
        return Matrix(rows: shape[0], cols: shape.dropFirst().reduce(1, *), data: try file.floats(name))
    }

    @Test(arguments: ParityCase.all)
    func encoderMatchesTheRecipe(_ c: ParityCase) throws {
        let (model, fixture, _) = try load(c)
        let features = LogMelExtractor(config: model.config.features).compute(try fixture.floats("waveform"))
        let expectedFeatures = try matrix(fixture, "features")
        #expect(features.rows == expectedFeatures.rows)
        #expect(closeness(features.data, expectedFeatures.data, rtol: 0, atol: 1e-3) <= 1)

        let encoded = model.encoder(expectedFeatures)
        let expectedEncoded = try matrix(fixture, "encoder_out")
        #expect(encoded.rows == expectedEncoded.rows && encoded.cols == expectedEncoded.cols)
        #expect(closeness(encoded.data, expectedEncoded.data) <= 1, "encoder output")
        let ctc = try #require(model.ctcLogProbs(encoded))
        #expect(closeness(ctc.data, try fixture.floats("ctc_logprobs")) <= 1, "CTC log-probabilities")
    }

    @Test(arguments: ParityCase.all)
    func firstDecoderStepsMatchTheRecipe(_ c: ParityCase) throws {
        let (model, fixture, expected) = try load(c)
        let encoded = model.encoder(try matrix(fixture, "features"))
        let attention = try matrix(fixture, "attention"), logProbs = try matrix(fixture, "logprobs")
        let memory = model.decoder.memory(for: encoded)
        let state = model.decoder.initialState(memory: memory)
        var lp: [Float] = []
        var previous = model.vocabulary.sosEos
        for step in 0..<attention.rows {
            model.decoder.step(previous: [previous], state: state, memory: memory, logProbs: &lp)
            #expect(closeness(Array(state.alignment(row: 0)), attention.row(step)) <= 1, "attention, step \(step)")
            #expect(closeness(lp, logProbs.row(step)) <= 1, "log-probabilities, step \(step)")
            // Follow the recipe's greedy path (it continues past <sos/eos> only when it has to).
            previous = step < expected.greedy_tokens.count ? expected.greedy_tokens[step] : model.vocabulary.sosEos
        }
    }

    @Test(arguments: ParityCase.all)
    func beamSearchGivesTheRecipesNBest(_ c: ParityCase) throws {
        let (model, fixture, expected) = try load(c)
        var options = DecodingOptions(model.config.decoding)
        options.maxBacktrackFrames = nil  // the reference has no attention-shift limit
        options.attentionWindow = nil     // nor a window
        if let recipe = expected.decoding {
            options.beam = recipe.beam
            options.ctcWeight = recipe.ctc_weight
            options.lengthNormalization = recipe.length_normalization
            options.maxLenRatio = recipe.max_len_ratio
            options.eosThreshold = recipe.eos_threshold
        }
        let encoded = model.encoder(try matrix(fixture, "features"))
        let nBest = BeamSearch(model: model, options: options).decode(encoded, nBest: expected.nbest.count)
        #expect(nBest.map(\.tokens) == expected.nbest.map(\.tokens))
        #expect(nBest.map { model.vocabulary.decode($0.tokens) } == expected.nbest.map(\.text))
        for (got, want) in zip(nBest, expected.nbest) {
            #expect(abs(got.score - want.score) < 1e-3 * max(1, abs(want.score)), "score \(got.score) vs \(want.score)")
        }
    }
}
