import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import LasrCore
import LasrDecoding
import LasrNN
import LasrOutput
import Logging
import NIOCore

/// What every route shares: the models once loaded, the worker pool, the upload folder.
final class ServerState: @unchecked Sendable {
    let options: ServerOptions
    let pool: WorkerPool
    let uploads: UploadDirectory
    private let lock = NSLock()
    private var _models: ModelRegistry?
    private var streams = 0

    init(options: ServerOptions) throws {
        self.options = options
        pool = WorkerPool(workers: options.workers, queueLimit: options.queueLimit, segmentSeconds: options.segmentSeconds)
        uploads = try UploadDirectory()
    }

    /// Nil until every model is loaded.
    var models: ModelRegistry? {
        get { lock.lock(); defer { lock.unlock() }; return _models }
        set { lock.lock(); _models = newValue; lock.unlock() }
    }

    /// The models, or 503 while they load.
    func readyModels() throws(APIError) -> ModelRegistry {
        guard let models else {
            throw APIError(.serviceUnavailable, "the server is still loading its models; retry shortly", type: "server_error",
                           code: "loading", retryAfter: 2)
        }
        return models
    }

    /// Takes one of the `maxStreams` live-stream slots; false when all are taken.
    func openStream() -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard streams < options.maxStreams else { return false }
        streams += 1
        return true
    }

    func closeStream() { lock.lock(); streams -= 1; lock.unlock() }

    var openStreams: Int { lock.lock(); defer { lock.unlock() }; return streams }
}

/// `lasr serve`: the OpenAI-compatible transcription API, live streams over
/// WebSocket, alignments and the web page, on Hummingbird.
public final class TranscriptionServer: Sendable {
    let state: ServerState
    let logger: Logger

    public init(options: ServerOptions, logger: Logger = Logger(label: "lasr.serve")) throws {
        guard options.workers >= 1 else { throw LasrError(.invalidArgument, "--workers must be at least 1") }
        state = try ServerState(options: options)
        self.logger = logger
    }

    /// Loads the models (while `/health` already answers "loading"), serves until
    /// SIGTERM or SIGINT, then stops accepting, lets what is in flight finish, and
    /// removes the upload folder. `onListening` gets the bound port.
    public func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let options = state.options
        // Each worker decodes on one core; a product split over more threads would
        // only wait for cores the other workers hold.
        BLAS.setThreads(max(1, ProcessInfo.processInfo.activeProcessorCount / options.workers))
        let state = self.state, logger = self.logger
        let loader = Thread {
            do {
                let models = try ModelRegistry(directories: options.modelDirectories)
                state.models = models
                logger.info("models loaded: \(models.models.map(\.name).joined(separator: ", "))")
            } catch {
                // Nothing can be served; say why and stop rather than answer 503 forever.
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                state.uploads.remove()
                exit(1)
            }
        }
        loader.stackSize = 8 << 20
        loader.start()

        let app = Application(
            router: Routes.http(state),
            server: .http1WebSocketUpgrade(
                webSocketRouter: Routes.webSocket(state),
                configuration: .init(http1: .init(additionalChannelHandlers: [ConnectionWatcher()],
                                                  idleTimeout: .seconds(Int64(max(60, options.requestTimeout + 30)))),
                                     ws: .init(maxFrameSize: 1 << 20))),
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "lasr"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? options.port
                onListening(port)
            },
            logger: logger)
        defer {
            state.pool.shutdown()
            state.uploads.remove()
        }
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
    }
}
