import Foundation
import LasrCore
import LasrModel
import Testing

/// A model that does not match its config must fail to load with a message that
/// names the file, the tensor or key, and the shapes.
@Suite struct ModelLoadTests {
    /// A writable copy of the tiny model, its config passed through `edit`.
    func copy(_ model: String = "tiny-model", editingConfig edit: (String) -> String = { $0 }) throws -> URL {
        let dir = try TestSupport.temporaryDirectory()
        for name in ["config.yaml", "model.safetensors", "tokens.txt"] {
            try FileManager.default.copyItem(atPath: TestSupport.fixture("\(model)/\(name)"),
                                             toPath: dir.appendingPathComponent(name).path)
        }
        let config = dir.appendingPathComponent("config.yaml")
        try edit(try String(contentsOf: config, encoding: .utf8)).write(to: config, atomically: true, encoding: .utf8)
        return dir
    }

    func loadError(_ dir: URL) -> LasrError? {
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            _ = try LasrModel(directory: dir.path)
            return nil
        } catch {
            return error as? LasrError
        }
    }

    @Test func theTinyModelLoads() throws {
        let model = try LasrModel(directory: TestSupport.fixture("tiny-model"))
        #expect(model.vocabulary.count == model.config.vocabulary.size)
        #expect(abs(model.frameDuration - 0.04) < 1e-12)
    }

    @Test func wrongWidthNamesTheTensorAndShapes() throws {
        let error = loadError(try copy { $0.replacingOccurrences(of: "d_model: 48", with: "d_model: 64") })
        #expect(error?.kind == .invalidModel)
        #expect(error?.description.contains("model.safetensors") == true)
        #expect(error?.description.contains("has shape [48") == true, "\(String(describing: error))")
        #expect(error?.description.contains("implies [64") == true, "\(String(describing: error))")
    }

    @Test func fewerBlocksLeaveTensorsUnused() throws {
        let error = loadError(try copy { $0.replacingOccurrences(of: "num_blocks: 2", with: "num_blocks: 1") })
        #expect(error?.kind == .invalidModel)
        #expect(error?.description.contains("encoder.blocks.1") == true, "\(String(describing: error))")
    }

    @Test func unknownConfigKeyIsNamed() throws {
        let error = loadError(try copy { $0.replacingOccurrences(of: "  ff_mult: 2", with: "  ff_mult: 2\n  dropout: 0.1") })
        #expect(error?.kind == .invalidConfig)
        #expect(error?.description.contains("unknown key 'dropout'") == true, "\(String(describing: error))")
    }

    @Test func aWhisperLayersEncoderLoadsAndItsShapesAreChecked() throws {
        let model = try LasrModel(directory: TestSupport.fixture("tiny-hybrid-model"))
        #expect(model.config.encoder.type == .whisper && model.encoder is WhisperLayersEncoder)
        #expect(abs(model.frameDuration - 0.04) < 1e-12)

        let missingLayer = loadError(try copy("tiny-hybrid-model") { $0.replacingOccurrences(of: "layers: 1", with: "layers: 2") })
        #expect(missingLayer?.kind == .invalidModel)
        #expect(missingLayer?.description.contains("encoder.blocks.1") == true, "\(String(describing: missingLayer))")

        let unknown = loadError(try copy("tiny-hybrid-model") { $0.replacingOccurrences(of: "    ctx: 750", with: "    ctx: 750\n    dropout: 0.1") })
        #expect(unknown?.kind == .invalidConfig)
        #expect(unknown?.description.contains("unknown key 'dropout'") == true, "\(String(describing: unknown))")

        let noBlock = loadError(try copy("tiny-hybrid-model") { $0.replacingOccurrences(of: "  whisper:", with: "  whisper_layers:") })
        #expect(noBlock?.kind == .invalidConfig, "\(String(describing: noBlock))")

        let convWithoutBlocks = loadError(try copy { $0.replacingOccurrences(of: "  num_blocks: 2\n", with: "") })
        #expect(convWithoutBlocks?.description.contains("num_blocks is missing") == true, "\(String(describing: convWithoutBlocks))")
    }

    /// Past the positional table (30 s for Whisper's), the encoder goes window by window
    /// instead of reading positions it does not have.
    @Test func aWhisperLayersEncoderEncodesInputLongerThanItsPositions() throws {
        let model = try LasrModel(directory: TestSupport.fixture("tiny-hybrid-model"))
        let encoder = try #require(model.encoder as? WhisperLayersEncoder)
        let window = encoder.maxFeatureFrames, bands = encoder.inputBands
        var generator = SystemRandomNumberGenerator()
        let frames = window + 401
        let features = Matrix(rows: frames, cols: bands, data: (0..<(frames * bands)).map { _ in Float.random(in: -20 ... -2, using: &generator) })
        let whole = encoder(features)
        #expect(whole.rows == encoder.outputFrames(frames))
        let first = encoder(Matrix(rows: window, cols: bands, data: Array(features.data[0..<(window * bands)])))
        let rest = encoder(Matrix(rows: 401, cols: bands, data: Array(features.data[(window * bands)...])))
        #expect(whole.data == first.data + rest.data)
        #expect(whole.data.allSatisfy { $0.isFinite })
    }

    @Test func timestampSectionIsOptionalAndChecked() throws {
        #expect(try LasrModel(directory: TestSupport.fixture("tiny-model")).config.timestamps.attentionLag == 0)
        let error = loadError(try copy { $0 + "timestamps:\n  attention_lag: 4.0\n" })
        #expect(error?.kind == .invalidConfig)
        #expect(error?.description.contains("timestamps.attention_lag") == true, "\(String(describing: error))")
        let unknown = loadError(try copy { $0 + "timestamps:\n  lag: 0.05\n" })
        #expect(unknown?.description.contains("unknown key 'lag'") == true, "\(String(describing: unknown))")
    }

    /// `timestamps.max_token_span` is optional (the engine's earlier 0.3 s without it) and
    /// range-checked.
    @Test func tokenSpanIsOptionalAndChecked() throws {
        let plain = try LasrModel(directory: TestSupport.fixture("tiny-model")).config.timestamps
        #expect(plain.maxTokenSpan == nil && plain.tokenSpan == TimestampConfig.defaultMaxTokenSpan)
        let dir = try copy { $0 + "timestamps:\n  attention_lag: 0.05\n  max_token_span: 0.16\n" }
        defer { try? FileManager.default.removeItem(at: dir) }
        let set = try LasrModel(directory: dir.path).config.timestamps
        #expect(set.maxTokenSpan == 0.16 && set.tokenSpan == 0.16 && set.attentionLag == 0.05)
        for value in ["0", "-0.1", "2.5"] {
            let error = loadError(try copy { $0 + "timestamps:\n  max_token_span: \(value)\n" })
            #expect(error?.kind == .invalidConfig)
            #expect(error?.description.contains("timestamps.max_token_span") == true, "\(String(describing: error))")
        }
    }

    @Test func vocabularySizeMustMatch() throws {
        let error = loadError(try copy { $0.replacingOccurrences(of: "size: 64", with: "size: 65") })
        #expect(error?.kind == .invalidModel)
        #expect(error?.description.contains("tokens.txt") == true, "\(String(describing: error))")
    }

    @Test func missingDirectoryAndWeights() throws {
        #expect(loadError(URL(fileURLWithPath: "/nonexistent/model"))?.kind == .fileNotFound)
        let dir = try copy()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("model.safetensors"))
        let error = loadError(dir)
        #expect(error?.kind == .fileNotFound)
        #expect(error?.description.contains("model.safetensors") == true)
    }
}
