import Foundation
import LasrCore
import LasrModel
import LasrNN
import Testing

/// The Swift Whisper network against OpenAI's own implementation: the fixture holds
/// a tiny random-weight Whisper and what `whisper.model.Whisper` computed from it
/// (tools/make_whisper_parity_fixture.py).
@Suite struct WhisperNetworkTests {
    struct Loaded {
        let network: WhisperNetwork
        let mel: Matrix
        let encoderOutput: [Float]
        let logits: Matrix
        let crossAttention: [Float]
        let tokens: [Int]
    }

    static func load() throws -> Loaded {
        let file = try SafeTensorsFile(path: TestSupport.fixture("whisper-parity.safetensors"))
        let dims = try JSONDecoder().decode(WhisperDimensions.self, from: Data(try #require(file.metadata["dims"]).utf8))
        let tokens = try JSONDecoder().decode([Int].self, from: Data(try #require(file.metadata["tokens"]).utf8))
        let store = WeightStore(file: file)
        let mel = Matrix(rows: dims.melFrames, cols: dims.nMels, data: try store.take("test.mel", [dims.melFrames, dims.nMels]))
        let encoderOutput = try store.take("test.encoder_output", [dims.nAudioCtx, dims.nAudioState])
        let logits = Matrix(rows: tokens.count, cols: dims.nVocab,
                            data: try store.take("test.logits", [tokens.count, dims.nVocab]))
        let cross = try store.take("test.cross_attention", [dims.nTextLayer, dims.nTextHead, tokens.count, dims.nAudioCtx])
        return Loaded(network: try WhisperNetwork(store, dims: dims), mel: mel, encoderOutput: encoderOutput,
                      logits: logits, crossAttention: cross, tokens: tokens)
    }

    static func maxDiff(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    @Test func encoderMatchesOpenAIWhisper() throws {
        let f = try Self.load()
        let encoded = f.network.encoder.encode(f.mel)
        #expect(encoded.rows == f.network.dims.nAudioCtx)
        #expect(Self.maxDiff(encoded.data, f.encoderOutput) < 1e-3)
    }

    @Test func decoderLogitsAndCrossAttentionMatchAllAtOnce() throws {
        let f = try Self.load()
        let dims = f.network.dims
        let audio = f.network.decoder.audioContext(f.network.encoder.encode(f.mel))
        let heads = (0..<dims.nTextLayer).flatMap { l in (0..<dims.nTextHead).map { [l, $0] } }
        var cross: WhisperDecoder.CrossAttention? = .init(heads: heads)
        let logits = f.network.decoder.forward([(f.tokens, f.network.decoder.makeCache())], audio: audio,
                                               logitRows: Array(0..<f.tokens.count), crossAttention: &cross)
        #expect(Self.maxDiff(logits.data, f.logits.data) < 1e-3, "max |swift − whisper| = \(Self.maxDiff(logits.data, f.logits.data))")
        let expected = f.crossAttention
        let got = try #require(cross).weights.flatMap(\.data)
        #expect(got.count == expected.count && Self.maxDiff(got, expected) < 1e-4)
    }

    /// One token at a time through the key/value cache, and two sequences batched,
    /// give the logits of the whole sequence at once.
    @Test func cachedStepsAndBatchesEqualTheFullPass() throws {
        let f = try Self.load()
        let decoder = f.network.decoder
        let audio = decoder.audioContext(f.network.encoder.encode(f.mel))
        var none: WhisperDecoder.CrossAttention? = nil
        let cache = decoder.makeCache()
        let prompt = Array(f.tokens.prefix(3))
        var rows = decoder.forward([(prompt, cache)], audio: audio, crossAttention: &none).data
        // a second sequence that diverges after the prompt, batched with the first
        let other = cache.copy()
        for (i, token) in f.tokens.dropFirst(3).enumerated() {
            let out = decoder.forward([([token], cache), ([(token + i + 1) % decoder.dims.nVocab], other)],
                                      audio: audio, crossAttention: &none)
            rows += out.row(0)
        }
        #expect(cache.length == f.tokens.count && other.length == f.tokens.count)
        let v = decoder.dims.nVocab
        let expected = Array(f.logits.data[((prompt.count - 1) * v)...])
        #expect(Self.maxDiff(rows, expected) < 1e-3)
    }

    @Test func aTensorOfTheWrongShapeIsNamed() throws {
        let file = try SafeTensorsFile(path: TestSupport.fixture("whisper-parity.safetensors"))
        var dims = try JSONDecoder().decode(WhisperDimensions.self, from: Data(try #require(file.metadata["dims"]).utf8))
        dims.nTextCtx += 1
        #expect {
            _ = try WhisperNetwork(WeightStore(file: file), dims: dims)
        } throws: { error in
            "\(error)".contains("decoder.positional_embedding")
        }
    }
}
