import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import LasrCore
import LasrDecoding
import LasrOutput
import NIOCore

/// The routes of `lasr serve`.
enum Routes {
    /// Form fields and headers besides the file: what a body may carry above `--max-upload-mb`.
    static let formOverhead = 64 << 10

    static func http(_ state: ServerState) -> Router<ServerRequestContext> {
        let router = Router(context: ServerRequestContext.self)
        router.middlewares.add(APIErrorMiddleware())
        router.middlewares.add(APIKeyMiddleware(key: state.options.apiKey))

        router.get("/health") { _, _ -> Response in
            let (queued, running) = state.pool.load
            guard let models = state.models else {
                return json(HealthBody(status: "loading", models: [], workers: state.pool.workerCount, queued: queued,
                                       running: running, abandoned: state.pool.abandoned, streams: state.openStreams),
                            status: .serviceUnavailable)
            }
            return json(HealthBody(status: "ok", models: models.models.map(\.name), workers: state.pool.workerCount,
                                   queued: queued, running: running, abandoned: state.pool.abandoned, streams: state.openStreams))
        }

        router.get("/v1/models") { _, _ -> Response in
            let models = try state.readyModels()
            return json(ModelList(data: models.models.map { ModelList.Model(id: $0.name, created: $0.created) }))
        }

        router.get("/v1/models/:id") { _, context -> Response in
            let models = try state.readyModels()
            let id = context.parameters.get("id") ?? ""
            guard let model = models.model(named: id) else {
                throw APIError(.notFound, "no model '\(id)' on this server", param: "model", code: "model_not_found")
            }
            return json(ModelList.Model(id: model.name, created: model.created))
        }

        router.post("/v1/audio/transcriptions") { request, context -> Response in
            let models = try state.readyModels()
            return try await withUpload(request, context: context, state: state) { form, gone in
                let parameters = try TranscriptionParameters(form: form, models: models, maxUploadBytes: state.options.maxUploadBytes)
                let transcript = try await decode(parameters.file, model: parameters.model, state: state, gone: gone) {
                    configure($0, temperature: parameters.temperature, language: parameters.language, prompt: parameters.promptTokens)
                }
                let (text, type) = try OpenAIResponse.transcription(
                    transcript, as: parameters.responseFormat, granularities: parameters.granularities,
                    language: parameters.language ?? "en", model: parameters.model)
                return Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
            }
        }

        router.post("/v1/audio/alignments") { request, context -> Response in
            let models = try state.readyModels()
            return try await withUpload(request, context: context, state: state) { form, gone in
                let parameters = try AlignmentParameters(form: form, models: models)
                let transcript = try await decode(parameters.file, model: parameters.model, state: state, gone: gone) { _ in }
                let (text, type) = try AlignmentResponse.render(transcript, parameters: parameters)
                return Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
            }
        }

        router.get("/") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                     body: .init(byteBuffer: ByteBuffer(string: WebPage.html)))
        }
        return router
    }

    static func webSocket(_ state: ServerState) -> Router<BasicWebSocketRequestContext> {
        let router = Router(context: BasicWebSocketRequestContext.self)
        router.middlewares.add(APIErrorMiddleware())
        // Always upgrade: a refused upgrade reaches the client as a bare 400, so a missing
        // key, a bad query or a full server is told in an error message on the socket
        // instead (LiveStream.run checks the key first).
        router.ws(RouterPath(LiveStream.path)) { _, _ in
            .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            try await LiveStream.run(inbound: inbound, outbound: outbound, request: context.request, state: state,
                                     logger: context.logger)
        }
        return router
    }

    /// Reads the multipart body and runs `handle` with it, and with a signal that fires
    /// if the client closes its connection meanwhile. A body over the upload limit is
    /// 413: at once by its Content-Length, else once it has been read (and dropped),
    /// since the answer can only be read by a client that has finished sending.
    /// The connection stays open for the client's next request.
    static func withUpload(_ request: Request, context: ServerRequestContext, state: ServerState,
                           _ handle: @escaping @Sendable (MultipartForm, Disconnection) async throws -> Response) async throws -> Response {
        let limit = state.options.maxUploadBytes
        let maxBody = limit + formOverhead
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maxBody {
            throw tooLarge(limit)
        }
        var buffer = ByteBuffer()
        var overflow = false
        for try await var chunk in request.body {
            if overflow { continue }
            if buffer.readableBytes + chunk.readableBytes > maxBody {
                overflow = true
                buffer = ByteBuffer()
            } else if buffer.readableBytes == 0 {
                buffer = chunk  // most uploads on loopback arrive whole: no copy
            } else {
                buffer.writeBuffer(&chunk)
            }
        }
        if overflow { throw tooLarge(limit) }
        let form = try MultipartForm(contentType: request.headers[.contentType], body: buffer)
        let gone = Disconnection()
        context.connection?.watch(gone)
        defer { context.connection?.forget(gone) }
        return try await handle(form, gone)
    }

    static func tooLarge(_ limit: Int) -> APIError {
        APIError(.contentTooLarge, "the upload is larger than this server accepts (\(limit >> 20) MiB, --max-upload-mb)",
                 param: "file", code: "file_too_large")
    }

    /// Decodes one upload on a worker: 503 when the queue is full, 504 past the
    /// request timeout, 400 naming the file when it is not audio lasr can read.
    /// When `gone` fires (the client went away) the job leaves the queue, or
    /// stops at its next segment.
    static func decode(_ file: MultipartForm.Part, model: ServedModel, state: ServerState, gone: Disconnection,
                       configure: @escaping @Sendable (any FileTranscriber) -> Void) async throws -> Transcript {
        let name = file.filename ?? "file"
        let upload: TemporaryUpload
        do {
            upload = try TemporaryUpload(file.body, filename: file.filename, in: state.uploads)
        } catch {
            throw APIError(.internalServerError, "\(error)", type: "server_error")
        }
        do {
            return try await state.pool.run(timeout: state.options.requestTimeout, abandonWhen: gone) { worker in
                let transcriber = worker.transcriber(for: model)
                configure(transcriber)
                // Gone before the response leaves, whatever the outcome.
                defer { upload.remove() }
                return try transcriber.transcribe(file: upload.path, progress: nil)
            }
        } catch let refusal as WorkerPool.Refusal {
            switch refusal {
            case .queueFull(let seconds):
                throw APIError(.serviceUnavailable, "all \(state.pool.workerCount) workers are busy and \(state.pool.queueLimit) requests are waiting; retry after \(seconds) s",
                               type: "server_error", code: "server_busy", retryAfter: seconds)
            case .closed:
                throw APIError(.serviceUnavailable, "the server is shutting down", type: "server_error", code: "shutting_down")
            case .timedOut:
                throw APIError(.gatewayTimeout, "decoding took longer than the server's request timeout (\(Int(state.options.requestTimeout)) s)",
                               type: "server_error", code: "timeout")
            }
        } catch let error as LasrError {
            switch error.kind {
            case .notAudio, .unsupportedEncoding, .corruptAudio, .emptyAudio, .readFailed, .fileNotFound:
                // The reason without the private path: the client knows its file by its own name.
                throw APIError(.badRequest, "\(name): \(error.reason)", param: "file", code: "invalid_audio")
            default:
                throw APIError(.internalServerError, "\(name): \(error.reason)", type: "server_error")
            }
        }
    }

    /// Per-request Whisper settings on a worker's recognizer (each request sets them anew).
    static func configure(_ transcriber: any FileTranscriber, temperature: Double, language: String?, prompt: [Int] = []) {
        guard let whisper = transcriber as? WhisperRecognizer else { return }
        var options = WhisperOptions(whisper.model.config)
        if temperature > 0 {
            // OpenAI: a temperature above 0 is where sampling starts; the fallback continues upward from it.
            options.temperatures = [temperature] + options.temperatures.filter { $0 > temperature }
        }
        options.language = language
        options.prompt = prompt
        whisper.options = options
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let text = (try? OpenAIResponse.encode(value)) ?? "{}\n"
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    struct HealthBody: Encodable {
        var status: String
        var models: [String]
        var workers: Int
        var queued: Int
        var running: Int
        /// Requests given up since the start: their client went away, or their time ran out.
        var abandoned: Int
        var streams: Int
    }

    struct ModelList: Encodable {
        struct Model: Encodable {
            var id: String
            var object = "model"
            var created: Int
            var owned_by = "lasr"
        }
        var object = "list"
        var data: [Model]
    }
}

/// With a key, every route but `/health` needs `Authorization: Bearer KEY`, or
/// `?api_key=KEY` for what a browser opens itself (the page, a WebSocket), which
/// cannot carry a header.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path != "/health" else { return try await next(request, context) }
        try Self.authorize(request, key: key)
        return try await next(request, context)
    }

    /// Throws the 401 of a request without the server's key (nothing when the server has none).
    static func authorize(_ request: Request, key: String?) throws(APIError) {
        guard let key else { return }
        var offered: String?
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") {
            offered = String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        } else if let query = request.uri.queryParameters.get("api_key") {
            offered = query
        }
        guard let offered, Self.constantTimeEqual(offered, key) else {
            throw APIError(.unauthorized, offered == nil ? "this server needs an API key: send Authorization: Bearer KEY"
                                                         : "the API key is not the one this server was started with",
                           type: "authentication_error", code: "invalid_api_key")
        }
    }

    /// Compares every byte whatever the first difference, so that the time taken tells nothing about the key.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }
}
