/// The one error type of the lasr library.
///
/// Every failure the user can cause — a missing file, audio libsndfile cannot
/// decode, a config with a wrong field, a model whose tensors do not match —
/// arrives as a `LasrError` whose `description` is a single line naming the
/// file, the position where there is one, and the reason.
public struct LasrError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, for callers (and tests) that branch on it.
    public enum Kind: String, Sendable, Equatable {
        case fileNotFound = "file not found"
        case isDirectory = "is a directory"
        case noAudioInDirectory = "no audio in directory"
        case notAudio = "not audio"
        case unsupportedEncoding = "unsupported encoding"
        case corruptAudio = "corrupt audio"
        case emptyAudio = "no samples"
        case readFailed = "read failed"
        case invalidConfig = "invalid config"
        case invalidModel = "invalid model"
        case invalidArgument = "invalid argument"
    }

    public let kind: Kind
    /// The file the error is about, when there is one.
    public let path: String?
    /// The reason, phrased for the user: what is wrong and, where it helps, what to do.
    public let reason: String

    public init(_ kind: Kind, path: String? = nil, _ reason: String) {
        self.kind = kind
        self.path = path
        self.reason = reason
    }

    public var description: String {
        guard let path else { return reason }
        return "\(path): \(reason)"
    }
}
