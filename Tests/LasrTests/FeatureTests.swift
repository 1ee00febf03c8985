import Foundation
import LasrCore
import LasrFeatures
import LasrNN
import Testing

@Suite struct FeatureTests {
    /// The committed fixture: a waveform and its features from the recipe's reference
    /// (`training/lasr_train/features.py`, written by `training/make_feature_fixture.py`).
    @Test func matchesThePythonReference() throws {
        let file = try SafeTensorsFile(path: TestSupport.fixture("features.safetensors"))
        let waveform = try file.floats("waveform")
        let expectedShape = try #require(file.tensors["features"]).shape
        let expected = try file.floats("features")
        let config = try ConfigFile.decode(FeatureConfig.self, section: "features",
                                           yaml: "features: \(try #require(file.metadata["feature_config"]))",
                                           path: "fixture metadata")
        let features = LogMelExtractor(config: config).compute(waveform)
        #expect([features.rows, features.cols] == expectedShape)
        var maxDiff: Float = 0
        for i in 0..<expected.count { maxDiff = max(maxDiff, abs(features.data[i] - expected[i])) }
        #expect(maxDiff < 1e-3, "max |swift − python| = \(maxDiff)")
    }

    @Test func builtInDefaultsAreThoseOfConfigsDefault() throws {
        let path = TestSupport.packageRoot.appendingPathComponent("configs/default.yaml").path
        #expect(try ConfigFile.load(FeatureConfig.self, section: "features", from: path) == FeatureConfig())
    }

    @Test func frameCountFollowsTheDocumentedFormula() {
        let config = FeatureConfig()
        #expect(config.frameCount(sampleCount: 399) == 0)
        #expect(config.frameCount(sampleCount: 400) == 1)
        #expect(config.frameCount(sampleCount: 559) == 1)
        #expect(config.frameCount(sampleCount: 560) == 2)
        #expect(config.frameCount(sampleCount: 16000) == 98)
        #expect(LogMelExtractor().compute([Float](repeating: 0.1, count: 16000)).rows == 98)
    }

    @Test func toneEnergyLandsInItsMelBand() {
        let config = FeatureConfig()
        let features = LogMelExtractor(config: config).compute(TestSupport.sine(frequency: 1000, rate: 16000, count: 8000))
        // Band m peaks at edge m+1 of n_mels+2 points equally spaced in mel.
        func mel(_ f: Double) -> Double { 2595 * log10(1 + f / 700) }
        let lo = mel(config.fMin), hi = mel(config.fMax)
        let expectedBand = Int(((mel(1000) - lo) / (hi - lo) * Double(config.nMels + 1)).rounded()) - 1
        for t in 0..<features.rows {
            let row = features.row(t)
            let peak = row.indices.max { row[$0] < row[$1] }!
            #expect(abs(peak - expectedBand) <= 1, "frame \(t): peak band \(peak), expected \(expectedBand)")
        }
    }

    @Test func silenceSitsAtTheLogFloor() {
        let features = LogMelExtractor().compute([Float](repeating: 0, count: 4000))
        #expect(features.data.allSatisfy { abs($0 - Float(log(1e-6))) < 1e-5 })
    }

    @Test func unknownKeyIsReportedWithItsLine() {
        let yaml = """
            name: x
            features:
              sample_rate: 16000
              n_fft: 512
              win_length: 400
              hop_length: 160
              n_mel: 80
            """
        #expect {
            try ConfigFile.decode(FeatureConfig.self, section: "features", yaml: yaml, path: "bad.yaml")
        } throws: { error in
            let e = error as? LasrError
            return e?.kind == .invalidConfig && e!.description.contains("bad.yaml")
                && e!.description.contains("'n_mel'") && e!.description.contains("line 7")
        }
    }

    @Test func valuesThatMakeNoSenseAreRejected() {
        let yaml = """
            features: {sample_rate: 16000, n_fft: 512, win_length: 400, hop_length: 160, n_mels: 80,
                       f_min: 20, f_max: 9000, log_floor: 1.0e-6}
            """
        #expect {
            try ConfigFile.decode(FeatureConfig.self, section: "features", yaml: yaml, path: "c.yaml")
        } throws: { error in
            (error as? LasrError)?.description.contains("features.f_max") == true
        }
        let missing = "features: {sample_rate: 16000}"
        #expect {
            try ConfigFile.decode(FeatureConfig.self, section: "features", yaml: missing, path: "m.yaml")
        } throws: { error in
            (error as? LasrError)?.description.contains("missing key") == true
        }
    }

    /// Whisper's front end as a feature configuration: the fixture holds what
    /// OpenAI's `whisper.audio.log_mel_spectrogram` computed (80 and 128 bands);
    /// the config comes from the fixture's metadata, in the same YAML keys a
    /// converted model's config.yaml uses.
    @Test(arguments: [80, 128]) func whisperFrontEndMatchesOpenAIWhisper(nMels: Int) throws {
        let file = try SafeTensorsFile(path: TestSupport.fixture("whisper-features.safetensors"))
        let waveform = try file.floats("waveform")
        let expected = try file.floats("features_\(nMels)")
        let config = try ConfigFile.decode(FeatureConfig.self, section: "features",
                                           yaml: "features: \(try #require(file.metadata["feature_config_\(nMels)"]))",
                                           path: "fixture metadata")
        #expect(config == FeatureConfig.whisper(nMels: nMels))
        let features = LogMelExtractor(config: config).compute(waveform)
        #expect([features.rows, features.cols] == (try #require(file.tensors["features_\(nMels)"])).shape)
        var maxDiff: Float = 0
        for i in 0..<expected.count { maxDiff = max(maxDiff, abs(features.data[i] - expected[i])) }
        #expect(maxDiff < 1e-3, "max |swift − whisper| = \(maxDiff)")
    }

    @Test func centeredFramesOfVeryShortInputsStayFinite() {
        let extractor = LogMelExtractor(config: .whisper(nMels: 80))
        #expect(extractor.compute([Float](repeating: 0.1, count: 159)).rows == 0)
        let short = extractor.compute((0..<170).map { Float(sin(Double($0) * 0.2)) })
        #expect(short.rows == 1 && short.data.allSatisfy(\.isFinite))
    }

    @Test func nativeConfigRoundTripsWithoutTheOptionalKeys() throws {
        let yaml = String(decoding: try JSONEncoder().encode(FeatureConfig()), as: UTF8.self)
        #expect(!yaml.contains("mel_scale") && !yaml.contains("center"))
        #expect(try ConfigFile.decode(FeatureConfig.self, section: "features", yaml: "features: \(yaml)", path: "j")
                == FeatureConfig())
    }
}
