import Foundation
import Hummingbird
import HummingbirdWebSocket
import LasrCore
import LasrDecoding
import LasrStream
import Logging
import NIOCore

/// `GET /v1/audio/stream` upgraded to a WebSocket: live audio in, the JSON lines
/// of `lasr stream --json` out.
///
/// The client sends binary frames of raw PCM (`format`, `rate`, `channels` in the
/// query; 16 kHz mono s16le by default) or of a WAV stream, whose header sets the
/// format. Each utterance is sent as one text frame as soon as it is decoded
/// (`"type": "final"`, or `"partial"` with `partials=MS`). A text frame `end` ends
/// the audio: the open utterance is decoded, its line sent, then
/// `{"type":"done"}` and a normal close. A client that just closes loses only what
/// was still being decoded; the stream's decoder stops in either case. A missing or
/// wrong API key, a bad query, an unknown model or a full server is one message
/// `{"type":"error", "message", "code", "param"}` and a close: 4401 for the key (the
/// HTTP status plus 4000, in the range RFC 6455 leaves to applications, since a browser
/// cannot read the status of a refused upgrade), 1013 "try again later" for a full
/// server, 1008 for the rest.
enum LiveStream {
    static let path = "/v1/audio/stream"

    struct Parameters {
        var model: ServedModel
        var format: PCMFormat
        var partials: Double?

        init(_ query: Parameters_Query, models: ModelRegistry) throws(APIError) {
            guard let name = query.get("model"), !name.isEmpty else {
                throw .badField("model", "name the model in the query: \(LiveStream.path)?model=NAME (GET /v1/models lists them)")
            }
            guard let model = models.model(named: name) else {
                throw APIError(.notFound, "no model '\(name)' on this server; it serves \(models.models.map(\.name).joined(separator: ", "))",
                               param: "model", code: "model_not_found")
            }
            self.model = model
            let encodingName = query.get("format") ?? PCMEncoding.s16le.rawValue
            guard let encoding = PCMEncoding(rawValue: encodingName) else {
                throw .badField("format", "format must be one of \(PCMEncoding.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(encodingName)')")
            }
            let rate = query.get("rate").map { Int($0) } ?? 16000
            guard let rate, (1000...384_000).contains(rate) else {
                throw .badField("rate", "rate must be a sample rate in Hz from 1000 to 384000")
            }
            let channels = query.get("channels").map { Int($0) } ?? 1
            guard let channels, (1...64).contains(channels) else {
                throw .badField("channels", "channels must be from 1 to 64")
            }
            format = PCMFormat(encoding: encoding, sampleRate: rate, channels: channels)
            if let text = query.get("partials") {
                guard let ms = Int(text), ms >= 100 else {
                    throw .badField("partials", "partials is the re-decoding interval in ms, at least 100 (got '\(text)')")
                }
                partials = Double(ms) / 1000
            }
        }
    }

    typealias Parameters_Query = Hummingbird.Parameters

    static func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, request: Request,
                    state: ServerState, logger: Logger) async throws {
        func fail(_ error: APIError) async throws {
            try await outbound.write(.text(error.streamMessage))
            let code = switch error.status {
            case .unauthorized: 4401
            case .serviceUnavailable: 1013
            default: 1008  // policy violation
            }
            try await outbound.close(.init(codeNumber: code), reason: nil)
        }
        let parameters: Parameters
        do {
            try APIKeyMiddleware<BasicWebSocketRequestContext>.authorize(request, key: state.options.apiKey)
            parameters = try Parameters(request.uri.queryParameters, models: try state.readyModels())
        } catch {
            return try await fail(error)
        }
        guard state.openStream() else {
            return try await fail(APIError(.serviceUnavailable, "all \(state.options.maxStreams) live streams are in use; retry later",
                                           type: "server_error", code: "server_busy"))
        }
        defer { state.closeStream() }

        let (lines, sink) = AsyncStream<String>.makeStream()
        let reader = PCMStreamReader(name: "stream", declared: parameters.format)
        var streamer: StreamingRecognizer?
        func start(_ format: PCMFormat) -> StreamingRecognizer {
            let onResult: @Sendable (StreamResult) -> Void = { sink.yield($0.jsonLine()) }
            switch parameters.model.kind {
            case .native(let model):
                return StreamingRecognizer(model: model, options: DecodingOptions(model.config.decoding, lm: model.config.lm), inputRate: format.sampleRate,
                                           inputChannels: format.channels, partialInterval: parameters.partials, onResult: onResult)
            case .whisper(let model):
                return StreamingRecognizer(whisper: model, options: WhisperOptions(model.config), inputRate: format.sampleRate,
                                           inputChannels: format.channels, partialInterval: parameters.partials, onResult: onResult)
            }
        }

        // Lines leave as the decoder thread produces them, while frames keep arriving.
        let writer = Task {
            for await line in lines { try await outbound.write(.text(line)) }
        }
        var failure: APIError?
        var ended = false
        do {
            reading: for try await message in inbound.messages(maxSize: 1 << 20) {
                switch message {
                case .binary(let buffer):
                    let samples = try buffer.withUnsafeReadableBytes { try reader.push($0) }
                    if streamer == nil, let format = reader.format { streamer = start(format) }
                    if !samples.isEmpty { streamer?.feed(samples) }
                case .text(let text):
                    if text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased() == "end" {
                        ended = true
                        break reading
                    }
                }
            }
            if let warning = try reader.finish() { logger.info("stream: \(warning.description)") }
            if streamer == nil, let format = reader.format { streamer = start(format) }
        } catch let error as LasrError {
            failure = APIError(.badRequest, "stream: \(error.reason)", code: "invalid_audio")
        } catch {
            failure = APIError(.badRequest, "stream: \(error)", code: "invalid_audio")
        }
        // finish() waits for the decoder thread: on a thread of its own, not the cooperative pool.
        if let streamer {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                let thread = Thread { streamer.finish(); done.resume() }
                thread.stackSize = 1 << 20
                thread.start()
            }
        }
        sink.finish()
        _ = await writer.result
        if let failure { return try await fail(failure) }
        if ended {
            try await outbound.write(.text(#"{"type":"done"}"#))
            try await outbound.close(.normalClosure, reason: nil)
        }
    }
}

extension APIError {
    /// The error as one WebSocket message of a live stream.
    var streamMessage: String {
        struct Message: Encodable {
            let type = "error"
            let message: String
            let code: String?
            let param: String?
        }
        return (try? OpenAIResponse.encode(Message(message: message, code: code, param: param)))?
            .trimmingCharacters(in: .newlines) ?? #"{"type":"error"}"#
    }
}
