import ArgumentParser
import Foundation
import LasrServer

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve an OpenAI-compatible transcription API, live streams over WebSocket, and a web page.",
        discussion: """
            Loads each --model once (native or Whisper) and serves it under its directory's \
            name (the first also as whisper-1, the OpenAI clients' default):

              POST /v1/audio/transcriptions  multipart: file, model, language, prompt, temperature,
                                             response_format (json, text, srt, vtt, verbose_json),
                                             timestamp_granularities[] (word, segment)
              POST /v1/audio/alignments      multipart: file, model, response_format (json,
                                             attention_csv, tokens_csv, words_csv, svg), segment
              GET  /v1/audio/stream          WebSocket: binary frames of PCM (query: model, format,
                                             rate, channels, partials) or a WAV stream; the lines of
                                             'lasr stream --json' come back; send the text 'end' to flush
              GET  /v1/models, GET /health (503 until the models are loaded), GET / (the web page)

            Uploads are any format libsndfile reads, at any rate. A fixed pool of --workers \
            decodes; up to --queue requests wait for it, and past that the answer is 503 with \
            Retry-After. Errors are OpenAI-style JSON naming the reason and the field. With \
            --api-key, every route but /health needs 'Authorization: Bearer KEY' (or \
            ?api_key=KEY, for the page and WebSockets a browser opens). SIGTERM or Ctrl-C stops \
            accepting, finishes what is in flight and exits. The server keeps no state between \
            requests: several instances can stand behind one proxy (docs/server.md).

            Example:
              lasr serve --model models/default
              curl -F file=@audio/01-welcome.wav -F model=default http://127.0.0.1:8080/v1/audio/transcriptions
            """)

    @Option(help: "Address to listen on; 0.0.0.0 exposes the server to the network.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free port (printed on stdout).")
    var port = 8080

    @Option(help: ArgumentHelp("Model directory to serve; repeat for several (default: $LASR_MODEL, else models/default).", valueName: "dir"))
    var model: [String] = []

    @Option(help: ArgumentHelp("Require 'Authorization: Bearer KEY' on every route but /health (default: $LASR_API_KEY, else none).", valueName: "key"))
    var apiKey: String?

    @Option(help: "Largest upload accepted, MiB; larger ones get 413.")
    var maxUploadMb = 25

    @Option(help: "Decoding threads (default: one per core).")
    var workers = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Requests that may wait for a worker; past that, 503 with Retry-After.")
    var queue = 16

    @Option(help: ArgumentHelp("Longest a request may wait and decode, seconds; past that, 504.", valueName: "seconds"))
    var timeout: Double = 300

    @Option(help: "Live WebSocket streams decoded at once (default: one per core); past that, a stream gets an error message and close code 1013.")
    var maxStreams = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Longest stretch of audio a native model decodes at once, in seconds.")
    var segmentSeconds: Double = 20

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must lie in 0…65535") }
        guard maxUploadMb >= 1 else { throw ValidationError("--max-upload-mb must be at least 1") }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        guard queue >= 0 else { throw ValidationError("--queue must be 0 or more") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        guard maxStreams >= 0 else { throw ValidationError("--max-streams must be 0 or more") }
        guard segmentSeconds >= 2 else { throw ValidationError("--segment-seconds must be at least 2") }
        if let apiKey, apiKey.isEmpty { throw ValidationError("--api-key must not be empty") }
    }

    func run() throws {
        var options = ServerOptions()
        options.host = host
        options.port = port
        do {
            options.modelDirectories = model.isEmpty ? [try ModelLocator.resolve(nil)] : model
        } catch {
            Terminal.report(error)
            throw ExitCode(1)
        }
        let environmentKey = ProcessInfo.processInfo.environment["LASR_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        options.apiKey = apiKey ?? environmentKey
        options.maxUploadBytes = maxUploadMb << 20
        options.workers = workers
        options.queueLimit = queue
        options.requestTimeout = timeout
        options.maxStreams = maxStreams
        options.segmentSeconds = segmentSeconds
        signal(SIGPIPE, SIG_IGN)
        let server: TranscriptionServer
        do {
            server = try TranscriptionServer(options: options)
        } catch {
            Terminal.report(error)
            throw ExitCode(1)
        }
        let host = self.host
        // ArgumentParser's run is synchronous; the server runs on Swift concurrency until it stops.
        let done = DispatchSemaphore(value: 0)
        let failure = FailureBox()
        Task {
            do {
                try await server.run { port in
                    print("lasr serve: listening on http://\(host):\(port)")
                    fflush(nil)
                }
            } catch {
                failure.error = error
            }
            done.signal()
        }
        done.wait()
        if let error = failure.error {
            Terminal.report(error)
            throw ExitCode(1)
        }
    }
}

private final class FailureBox: @unchecked Sendable {
    var error: (any Error)?
}
