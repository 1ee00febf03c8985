import LasrCore

/// Strict access to a model's tensors: each is asked for by name with the shape the
/// config implies, and `finish()` fails if the file holds tensors nobody asked for,
/// so a model that does not match its config cannot load half-right.
public final class WeightStore {
    private let file: SafeTensorsFile
    private var taken: Set<String> = []

    public init(file: SafeTensorsFile) { self.file = file }

    public var path: String { file.path }
    public var metadata: [String: String] { file.metadata }

    /// The tensor `name` as floats; its shape must equal `shape`.
    public func take(_ name: String, _ shape: [Int]) throws -> [Float] {
        taken.insert(name)
        return try file.floats(name, shape: shape)
    }

    /// Fails if any tensor in the file was not used.
    public func finish() throws {
        let unused = Set(file.names).subtracting(taken)
        if !unused.isEmpty {
            let list = unused.sorted().prefix(5).joined(separator: ", ")
            throw LasrError(.invalidModel, path: file.path,
                            "\(unused.count) tensor(s) not used by the config: \(list)\(unused.count > 5 ? ", …" : "")")
        }
    }
}
