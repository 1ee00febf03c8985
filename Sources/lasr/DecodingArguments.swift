import ArgumentParser
import Foundation
import LasrDecoding
import LasrCore
import LasrModel
import LasrOutput

/// The options every decoding command shares: which model, and how to search.
struct DecodingArguments: ParsableArguments {
    @Option(help: ArgumentHelp("Model directory (default: $LASR_MODEL, else models/default).", valueName: "dir"))
    var model: String?

    @Option(help: "Beam size; 1 is greedy decoding (default: the model's, 16 for models/default).")
    var beam: Int?

    @Option(help: "Weight of the CTC prefix score in joint decoding, 0…1 (default: the model's).")
    var ctcWeight: Double?

    @Flag(help: "Score every frame at each decoder step instead of a window of 0.8 s back and 2.4 s ahead of the last attention peak.")
    var fullAttention = false

    @Option(help: "Weight β of the model's language model in shallow fusion, ≥ 0; 0 decodes without it (default: the model's lm.weight).")
    var lmWeight: Double?

    @Option(help: "Score bonus γ per token when fusing the language model (default: the model's lm.length_bonus).")
    var lengthBonus: Double?

    @Option(help: "Penalty δ where a fused hypothesis spells a word outside the LM's lexicon, ≥ 0; 0 checks no words (default: the model's lm.lexicon_penalty).")
    var lexiconPenalty: Double?

    @Option(help: "Weight μ of the internal-LM discount when fusing: each candidate also gains −μ·log p of the decoder run on the mean encoder frame instead of attention, ≥ 0; 0 turns it off (default: the model's lm.internal_lm_weight, else 0).")
    var internalLmWeight: Double?

    @Flag(help: "Decode without the model's language model (as --lm-weight 0 --length-bonus 0, no lexicon).")
    var noLm = false

    @Option(help: ArgumentHelp("Whisper models: pad audio to 30 s windows as openai-whisper does (30 s of silence) or as faster-whisper does (zeros in the log-mel domain).", valueName: "openai|faster-whisper"))
    var whisperPadding: WhisperOptions.Padding = .openai

    @Flag(help: "Whisper models: decode each window once at temperature 0, without the sampled retries.")
    var noFallback = false

    @Option(help: ArgumentHelp("Whisper models: text the model reads before the audio, for the spellings, names and style to follow (openai-whisper's --initial_prompt).", valueName: "text"))
    var prompt: String?

    func validate() throws {
        if let beam, beam < 1 { throw ValidationError("--beam must be at least 1") }
        if let ctcWeight, !(0...1).contains(ctcWeight) { throw ValidationError("--ctc-weight must lie in [0, 1]") }
        if let lmWeight, !(0...5).contains(lmWeight) { throw ValidationError("--lm-weight must lie in [0, 5]") }
        if let lengthBonus, !(-5...5).contains(lengthBonus) { throw ValidationError("--length-bonus must lie in [-5, 5]") }
        if let lexiconPenalty, !(0...20).contains(lexiconPenalty) { throw ValidationError("--lexicon-penalty must lie in [0, 20]") }
        if let internalLmWeight, !(0...2).contains(internalLmWeight) { throw ValidationError("--internal-lm-weight must lie in [0, 2]") }
        if noLm && (lmWeight != nil || lengthBonus != nil || lexiconPenalty != nil || internalLmWeight != nil) {
            throw ValidationError("--no-lm cannot be combined with --lm-weight, --length-bonus, --lexicon-penalty or --internal-lm-weight")
        }
    }

    /// A native lasr model or a converted Whisper model.
    enum LoadedModel {
        case native(LasrModel)
        case whisper(WhisperModel)
    }

    /// Loads the model, native or Whisper (by its config's `architecture`); a failure
    /// is reported on stderr and ends the command with status 1.
    func loadAnyModel() throws -> LoadedModel {
        do {
            let directory = try ModelLocator.resolve(model)
            switch try ModelArchitecture.of(directory: directory) {
            case .lasr:
                if prompt != nil {
                    throw LasrError(.invalidArgument, path: directory,
                                    "--prompt applies to Whisper models; the native speller takes no text context")
                }
                let model = try LasrModel(directory: directory)
                if model.languageModel == nil, let lmWeight, lmWeight > 0 {
                    throw LasrError(.invalidArgument, path: directory, "--lm-weight: this model has no language model (no lm: section in config.yaml)")
                }
                if model.languageModel == nil, let internalLmWeight, internalLmWeight > 0 {
                    throw LasrError(.invalidArgument, path: directory, "--internal-lm-weight: this model has no language model to fuse (no lm: section in config.yaml)")
                }
                if model.languageModel?.lexicon == nil, let lexiconPenalty, lexiconPenalty > 0 {
                    throw LasrError(.invalidArgument, path: directory, "--lexicon-penalty: this model's language model has no lexicon (no lm.lexicon in config.yaml)")
                }
                return .native(model)
            case .whisper:
                if ctcWeight != nil || fullAttention || lmWeight != nil || lengthBonus != nil || lexiconPenalty != nil
                    || internalLmWeight != nil {
                    throw LasrError(.invalidArgument, path: directory,
                                    "--ctc-weight, --full-attention, --lm-weight, --length-bonus, --lexicon-penalty and --internal-lm-weight apply to native models, not Whisper")
                }
                let model = try WhisperModel(directory: directory)
                if prompt != nil, !model.tokenizer.canEncode {
                    throw LasrError(.invalidArgument, path: directory,
                                    "--prompt: this model has no merges.txt to encode text with; convert it again with tools/convert_whisper.py")
                }
                return .whisper(model)
            }
        } catch {
            Terminal.report(error)
            throw ExitCode(1)
        }
    }

    /// A factory of per-thread transcribers for the loaded model, and what the
    /// transcript files record about the decoding.
    /// `alternatives` above 1 keeps that many readings per segment (native models only:
    /// `checkAlternatives` refuses Whisper).
    func transcribers(for loaded: LoadedModel, segmentSeconds: Double = 20, alternatives: Int = 1)
        -> (make: @Sendable () -> FileTranscriber, info: DecodingInfo) {
        switch loaded {
        case .native(let model):
            let options = options(for: model)
            return ({
                let recognizer = Recognizer(model: model, options: options, segmenter: Segmenter(maxSeconds: segmentSeconds))
                recognizer.alternatives = alternatives
                return recognizer
            },
                    DecodingInfo(model: model.directory, options: options))
        case .whisper(let model):
            let options = whisperOptions(for: model)
            return ({ WhisperRecognizer(model: model, options: options) },
                    DecodingInfo(model: model.directory, beam: options.beam))
        }
    }

    /// `--n-best` applies to the native beam search; a failure is reported on stderr and
    /// ends the command with status 1.
    func checkAlternatives(_ nBest: Int?, for loaded: LoadedModel) throws {
        guard let nBest, nBest > 1, case .whisper(let model) = loaded else { return }
        Terminal.report(LasrError(.invalidArgument, path: model.directory,
                                  "--n-best applies to native models; Whisper's decoder keeps no n-best list"))
        throw ExitCode(1)
    }

    /// Whisper's decoding defaults (the model config's) with --beam applied.
    func whisperOptions(for model: WhisperModel) -> WhisperOptions {
        var options = WhisperOptions(model.config)
        if let beam { options.beam = beam }
        options.padding = whisperPadding
        if noFallback { options.temperatures = [0] }
        // Whitespace-trimmed behind one space, as openai-whisper encodes its initial prompt;
        // loadAnyModel has checked that the model can encode text.
        if let text = prompt?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty {
            options.prompt = (try? model.tokenizer.encode(" " + text)) ?? []
        }
        return options
    }

    /// The model's decoding defaults with these arguments applied.
    func options(for model: LasrModel) -> DecodingOptions {
        var options = DecodingOptions(model.config.decoding, lm: model.config.lm)
        if let beam { options.beam = beam }
        if let ctcWeight { options.ctcWeight = ctcWeight }
        if fullAttention { options.attentionWindow = nil }
        if let lmWeight { options.lmWeight = lmWeight }
        if let lengthBonus { options.lengthBonus = lengthBonus }
        if let lexiconPenalty { options.lexiconPenalty = lexiconPenalty }
        if let internalLmWeight { options.internalLMWeight = internalLmWeight }
        if noLm {
            options.lmWeight = 0
            options.lengthBonus = 0
            options.lexiconPenalty = 0
            options.internalLMWeight = 0
        }
        return options
    }
}

extension WhisperOptions.Padding: ExpressibleByArgument {}
