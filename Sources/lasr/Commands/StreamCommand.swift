import ArgumentParser
import Foundation
import LasrCore
import LasrDecoding
import LasrModel
import LasrNN
import LasrStream

extension PCMEncoding: ExpressibleByArgument {}

struct StreamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "Recognize audio streamed on stdin, printing each utterance as soon as it ends.",
        discussion: """
            stdin carries raw PCM in the format given by --format, --rate and --channels \
            (default: 16 kHz mono s16le), or a WAV stream, recognized by its RIFF header \
            (length fields of 0 or 0xFFFFFFFF, as streaming writers produce, are accepted). \
            Any rate is resampled. A voice-activity detector cuts the stream into \
            utterances: speech is a 10 ms frame more than --vad-margin dB above the noise \
            floor (the quietest frame of the last 2 s) and above --vad-min-db dBFS; an \
            utterance needs --min-speech ms of speech and ends after --trailing-silence ms \
            without; one longer than --max-utterance s is cut at its quietest point. \
            An idle decoder starts on an utterance after 300 ms of silence, ahead of \
            its end (its audio ends 200 ms after the speech), so that the line is ready \
            when the end comes; if speech resumes first, that work is dropped \
            (--no-early-decode turns this off). \
            Each utterance is printed as one line as soon as it is decoded (plain text, or \
            with --json a JSON object with start, end, text and words with times and \
            confidence; times are seconds from the start of the stream). With --partials MS \
            the open utterance is re-decoded every MS ms and printed as a partial result \
            ('… ' before plain text, "type": "partial" in JSON). End of input or Ctrl-C \
            flushes the last utterance and exits 0; a closed stdout ends quietly.

            Examples:
              arecord -f S16_LE -r 16000 -c 1 | lasr stream
              sox talk.flac -t raw -r 16000 -e signed -b 16 -c 1 - | lasr stream --json
              ffmpeg -i rtsp://camera/stream -f s16le -ac 1 -ar 16000 - | lasr stream
            """)

    @OptionGroup var decoding: DecodingArguments

    @Option(help: "Sample encoding of raw input: \(PCMEncoding.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: PCMEncoding = .s16le

    @Option(help: "Sample rate of raw input, Hz.")
    var rate: Int = 16000

    @Option(help: "Channels of raw input (interleaved; mixed down to mono).")
    var channels: Int = 1

    @Flag(help: "Print JSON lines instead of plain text.")
    var json = false

    @Option(help: ArgumentHelp("Re-decode the open utterance every MS milliseconds and print it as a partial result.", valueName: "ms"))
    var partials: Int?

    @Option(help: "Speech is this many dB above the noise floor.")
    var vadMargin: Double = 12

    @Option(help: "Speech is louder than this, in dB relative to full scale.")
    var vadMinDb: Double = -55

    @Option(help: ArgumentHelp("Least speech an utterance must hold, ms.", valueName: "ms"))
    var minSpeech: Int = 200

    @Option(help: ArgumentHelp("Silence that ends an utterance, ms.", valueName: "ms"))
    var trailingSilence: Int = 500

    @Option(help: "Longest utterance, seconds; longer ones are cut at their quietest point.")
    var maxUtterance: Double = 20

    @Flag(help: "Decode an utterance only once its end is detected, never ahead of it (less CPU where speech pauses often, later lines).")
    var noEarlyDecode = false

    func validate() throws {
        guard (1000...384_000).contains(rate) else { throw ValidationError("--rate must lie in 1000…384000 Hz") }
        guard (1...64).contains(channels) else { throw ValidationError("--channels must lie in 1…64") }
        if let partials, partials < 100 { throw ValidationError("--partials must be at least 100 ms") }
        guard minSpeech > 0, trailingSilence >= 100 else {
            throw ValidationError("--min-speech must be positive and --trailing-silence at least 100 ms")
        }
        guard maxUtterance >= 2 else { throw ValidationError("--max-utterance must be at least 2 s") }
    }

    func run() throws {
        let model = try decoding.loadAnyModel()
        BLAS.setThreads(1)  // the reader and the decoder each keep one core
        signal(SIGPIPE, SIG_IGN)
        let interrupted = Interruption.install()

        var config = EndpointerConfig()
        config.marginDB = vadMargin
        config.minimumDB = vadMinDb
        config.minSpeech = Double(minSpeech) / 1000
        config.trailingSilence = Double(trailingSilence) / 1000
        config.maxUtterance = maxUtterance
        if noEarlyDecode { config.foreseeAfter = nil }
        let reader = PCMStreamReader(declared: PCMFormat(encoding: format, sampleRate: rate, channels: channels))
        let printer = LinePrinter(json: json)
        var streamer: StreamingRecognizer?
        var failure: LasrError?
        var buffer = [UInt8](repeating: 0, count: 16384)
        reading: while !interrupted.isSet {
            var poller = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 100)
            if ready == 0 || (ready < 0 && errno == EINTR) { continue }
            let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                failure = LasrError(.readFailed, path: "stdin", "read failed: \(String(cString: strerror(errno)))")
                break
            }
            if n == 0 { break }
            do {
                let samples = try buffer.withUnsafeBytes { try reader.push(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                if streamer == nil, let format = reader.format {
                    streamer = makeStreamer(model: model, format: format, config: config, printer: printer)
                }
                if !samples.isEmpty { streamer?.feed(samples) }
            } catch {
                failure = error as? LasrError ?? LasrError(.corruptAudio, path: "stdin", "\(error)")
                break reading
            }
        }
        if failure == nil {
            do {
                if let warning = try reader.finish() { Terminal.warn(warning.description) }
            } catch {
                failure = error as? LasrError
            }
            if streamer == nil, let format = reader.format, failure == nil {
                streamer = makeStreamer(model: model, format: format, config: config, printer: printer)
            }
        }
        // What was heard before a fault is still decoded and printed.
        streamer?.finish()
        if let failure {
            Terminal.report(failure)
            throw ExitCode(1)
        }
    }

    private func makeStreamer(model: DecodingArguments.LoadedModel, format: PCMFormat, config: EndpointerConfig,
                              printer: LinePrinter) -> StreamingRecognizer {
        let partialInterval = partials.map { Double($0) / 1000 }
        switch model {
        case .native(let model):
            return StreamingRecognizer(model: model, options: decoding.options(for: model), inputRate: format.sampleRate,
                                       inputChannels: format.channels, endpointer: config,
                                       partialInterval: partialInterval) { printer.print($0) }
        case .whisper(let model):
            return StreamingRecognizer(whisper: model, options: decoding.whisperOptions(for: model),
                                       inputRate: format.sampleRate, inputChannels: format.channels, endpointer: config,
                                       partialInterval: partialInterval) { printer.print($0) }
        }
    }
}


/// Writes result lines straight to file descriptor 1, one `write` per line, so each
/// line leaves as soon as it exists; a reader that went away (EPIPE) ends the
/// process quietly, as `| head -1` expects.
final class LinePrinter: Sendable {
    let json: Bool

    init(json: Bool) { self.json = json }

    func print(_ result: StreamResult) {
        let line: String
        if json {
            line = result.jsonLine() + "\n"
        } else {
            line = (result.isPartial ? "… " : "") + result.text + "\n"
        }
        let bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                exit(0)  // EPIPE: nobody is listening any more
            }
            offset += n
        }
    }
}

/// SIGINT as a flag the read loop polls, so Ctrl-C ends the stream like end of input.
final class Interruption: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    private var source: DispatchSourceSignal?

    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return set }

    static func install() -> Interruption {
        let flag = Interruption()
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { flag.lock.lock(); flag.set = true; flag.lock.unlock() }
        source.resume()
        flag.source = source
        return flag
    }
}
