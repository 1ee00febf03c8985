import ArgumentParser
import Foundation
import LasrDecoding
import LasrModel

/// The options every decoding command shares: which model, and how to search.
struct DecodingArguments: ParsableArguments {
    @Option(help: ArgumentHelp("Model directory (default: $LASR_MODEL, else models/default).", valueName: "dir"))
    var model: String?

    @Option(help: "Beam size; 1 is greedy decoding (default: the model's, 8 for models/default).")
    var beam: Int?

    @Option(help: "Weight of the CTC prefix score in joint decoding, 0…1 (default: the model's).")
    var ctcWeight: Double?

    @Flag(help: "Score every frame at each decoder step instead of a window of 0.8 s back and 2.4 s ahead of the last attention peak.")
    var fullAttention = false

    func validate() throws {
        if let beam, beam < 1 { throw ValidationError("--beam must be at least 1") }
        if let ctcWeight, !(0...1).contains(ctcWeight) { throw ValidationError("--ctc-weight must lie in [0, 1]") }
    }

    /// Loads the model; a failure is reported on stderr and ends the command with status 1.
    func loadModel() throws -> LasrModel {
        do {
            return try LasrModel(directory: try ModelLocator.resolve(model))
        } catch {
            Terminal.report(error)
            throw ExitCode(1)
        }
    }

    /// The model's decoding defaults with these arguments applied.
    func options(for model: LasrModel) -> DecodingOptions {
        var options = DecodingOptions(model.config.decoding)
        if let beam { options.beam = beam }
        if let ctcWeight { options.ctcWeight = ctcWeight }
        if fullAttention { options.attentionWindow = nil }
        return options
    }
}
