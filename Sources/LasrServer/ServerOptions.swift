import Foundation

/// How `lasr serve` runs: where it listens, what it serves, and its limits.
public struct ServerOptions: Sendable {
    /// Address to bind; loopback unless the user asks for more.
    public var host = "127.0.0.1"
    /// Port to bind; 0 picks a free one (the bound port is logged and passed to `onListening`).
    public var port = 8080
    /// Model directories, each served under its directory's name.
    public var modelDirectories: [String] = []
    /// With a key, every route but `/health` needs `Authorization: Bearer KEY`.
    public var apiKey: String?
    /// Largest accepted audio upload, bytes.
    public var maxUploadBytes = 25 << 20
    /// Decoding threads; each holds its own recognizer per model.
    public var workers = ProcessInfo.processInfo.activeProcessorCount
    /// Requests that may wait for a worker; past that the server answers 503.
    public var queueLimit = 16
    /// Longest a request may wait and decode, seconds; past that it answers 504 and its work is dropped.
    public var requestTimeout: Double = 300
    /// Longest stretch of audio decoded at once by a native model, seconds (as `lasr transcribe --segment-seconds`).
    public var segmentSeconds: Double = 20
    /// Live streams decoded at once (each has its own decoder thread).
    public var maxStreams = ProcessInfo.processInfo.activeProcessorCount

    public init() {}
}
