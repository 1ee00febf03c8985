import Foundation
import LasrAudio
import LasrCore
import LasrDecoding
import LasrModel
import LasrStream
import Testing

/// Builds test streams from the rendered samples in audio/.
enum StreamFixture {
    static let rate = 16000

    static func speech(_ name: String) throws -> [Float] {
        try AudioFile.load(TestSupport.packageRoot.appendingPathComponent("audio/\(name)").path).samples
    }

    /// First and last sample louder than -34 dBFS: where the sound is.
    static func soundSpan(_ x: [Float]) -> (Double, Double) {
        let first = x.firstIndex { abs($0) > 0.02 }!, last = x.lastIndex { abs($0) > 0.02 }!
        return (Double(first) / Double(rate), Double(last) / Double(rate))
    }

    static func silence(_ seconds: Double) -> [Float] { [Float](repeating: 0, count: Int(seconds * Double(rate))) }

    static func s16le(_ x: [Float]) -> Data {
        var data = Data(capacity: x.count * 2)
        for v in x {
            let s = Int16(max(-32768, min(32767, (v * 32768).rounded())))
            withUnsafeBytes(of: s.littleEndian) { data.append(contentsOf: $0) }
        }
        return data
    }
}

/// `lasr stream` as a child process with pipes on both ends.
final class StreamProcess {
    let process = Process()
    let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
    private var buffer = Data()

    init(_ arguments: [String], model: String = TestSupport.fixture("tiny-model")) throws {
        signal(SIGPIPE, SIG_IGN)  // writing to a child that is gone must fail, not kill the test runner
        process.executableURL = TestSupport.lasrExecutable
        process.arguments = ["stream", "--model", model] + arguments
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
    }

    /// Writes to the child's stdin; a child that has exited (EPIPE) is not an error here.
    func send(_ data: Data) { try? stdin.fileHandleForWriting.write(contentsOf: data) }

    /// Sends `data` in 100 ms chunks, `speed` times faster than real time.
    func sendPaced(_ data: Data, speed: Double = 4) {
        let chunk = StreamFixture.rate / 10 * 2
        var offset = 0
        while offset < data.count {
            let end = min(data.count, offset + chunk)
            send(data.subdata(in: offset..<end))
            offset = end
            Thread.sleep(forTimeInterval: 0.1 / speed)
        }
    }

    /// Waits up to `timeout` seconds for one whole line on stdout.
    func readLine(timeout: Double) -> String? {
        let fd = stdout.fileHandleForReading.fileDescriptor
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let newline = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) > 0 else { continue }
            var bytes = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &bytes, bytes.count)
            if n <= 0 { return nil }
            buffer.append(contentsOf: bytes[0..<n])
        }
        return nil
    }

    /// Closes stdin and collects the rest: (remaining stdout lines, stderr, exit status).
    func finish() -> ([String], String, Int32) {
        try? stdin.fileHandleForWriting.close()
        var lines: [String] = []
        // Until the child closes stdout (it exits): the wait is only a guard against a hung
        // child, long enough for a loaded 2-core machine, not a time the test measures.
        while let line = readLine(timeout: 300) { lines.append(line) }
        process.waitUntilExit()
        let errors = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (lines, errors, process.terminationStatus)
    }
}

@Suite(.serialized) struct StreamCommandTests {
    struct Line: Decodable { let type: String; let start: Double; let end: Double; let text: String }

    func decode(_ line: String) throws -> Line { try JSONDecoder().decode(Line.self, from: Data(line.utf8)) }

    @Test func firstUtteranceArrivesBeforeStdinClosesAndTimesMatch() throws {
        let a = try StreamFixture.speech("01-welcome.wav"), b = try StreamFixture.speech("03-library.wav")
        let lead = 1.0, gap = 2.0
        let first = StreamFixture.silence(lead) + a + StreamFixture.silence(gap)
        let second = b + StreamFixture.silence(1)
        let stream = try StreamProcess(["--json"])
        stream.sendPaced(StreamFixture.s16le(first))
        // stdin is still open: the first utterance must already be out.
        let line = try #require(stream.readLine(timeout: 120), "no line before stdin closed")
        let u1 = try decode(line)
        stream.sendPaced(StreamFixture.s16le(second))
        let (rest, errors, status) = stream.finish()
        #expect(status == 0, "\(errors)")
        #expect(rest.count == 1)
        let u2 = try decode(try #require(rest.first))

        let (a0, a1) = StreamFixture.soundSpan(a), (b0, b1) = StreamFixture.soundSpan(b)
        let bOffset = Double(first.count) / Double(StreamFixture.rate)
        #expect(u1.type == "final" && u2.type == "final")
        #expect(abs(u1.start - (lead + a0)) < 0.1, "start \(u1.start) vs \(lead + a0)")
        #expect(abs(u1.end - (lead + a1)) < 0.1, "end \(u1.end) vs \(lead + a1)")
        #expect(abs(u2.start - (bOffset + b0)) < 0.1, "start \(u2.start) vs \(bOffset + b0)")
        #expect(abs(u2.end - (bOffset + b1)) < 0.1, "end \(u2.end) vs \(bOffset + b1)")
    }

    @Test func partialResultsComeBeforeTheFinalOne() throws {
        let a = try StreamFixture.speech("01-welcome.wav")
        let stream = try StreamProcess(["--json", "--partials", "500"])
        stream.sendPaced(StreamFixture.s16le(a + StreamFixture.silence(1)), speed: 8)
        let (lines, errors, status) = stream.finish()
        #expect(status == 0, "\(errors)")
        let kinds = try lines.map { try decode($0).type }
        #expect(kinds.last == "final" && kinds.filter { $0 == "final" }.count == 1, "\(kinds)")
        #expect(kinds.filter { $0 == "partial" }.count >= 2, "\(kinds)")
        let partials = try lines.map(decode).filter { $0.type == "partial" }
        for (x, y) in zip(partials, partials.dropFirst()) { #expect(x.end <= y.end) }
    }

    @Test func endOfInputFlushesTheOpenUtterance() throws {
        let a = try StreamFixture.speech("01-welcome.wav")
        let (a0, a1) = StreamFixture.soundSpan(a)
        let stream = try StreamProcess(["--json"])
        stream.send(StreamFixture.s16le(Array(a[..<Int((a1 - 0.05) * 16000)])))  // cut off mid-sound
        let (lines, errors, status) = stream.finish()
        #expect(status == 0, "\(errors)")
        #expect(lines.count == 1)
        #expect(abs(try decode(lines[0]).start - a0) < 0.1)
    }

    @Test func noEarlyDecodeGivesTheSameLines() throws {
        let a = try StreamFixture.speech("01-welcome.wav"), b = try StreamFixture.speech("02-weather.wav")
        let input = StreamFixture.s16le(a + StreamFixture.silence(1) + b + StreamFixture.silence(1))
        var outputs: [[String]] = []
        for flags in [["--json"], ["--json", "--no-early-decode"]] {
            let stream = try StreamProcess(flags)
            stream.sendPaced(input)
            let (lines, errors, status) = stream.finish()
            #expect(status == 0, "\(errors)")
            outputs.append(lines)
        }
        #expect(outputs[0].count == 2)
        #expect(outputs[0] == outputs[1])
    }

    @Test func interruptFlushesLikeEndOfInput() throws {
        let a = try StreamFixture.speech("01-welcome.wav")
        let stream = try StreamProcess(["--json"])
        stream.send(StreamFixture.s16le(a))  // speech, no trailing silence: the utterance is still open
        Thread.sleep(forTimeInterval: 0.5)
        stream.process.interrupt()           // SIGINT, stdin still open
        var lines: [String] = []
        while let line = stream.readLine(timeout: 300) { lines.append(line) }
        stream.process.waitUntilExit()
        #expect(stream.process.terminationStatus == 0)
        #expect(lines.count == 1)
        try? stream.stdin.fileHandleForWriting.close()
    }

    @Test func wavStreamWithStreamingLengthFieldsAtAnotherRate() throws {
        // 44.1 kHz stereo float WAV whose RIFF and data sizes are 0xFFFFFFFF, as `sox ... -t wav -` writes to a pipe.
        let source = TestSupport.packageRoot.appendingPathComponent("audio/03-library.wav").path
        var bytes = try Data(contentsOf: URL(fileURLWithPath: source))
        for offset in [4] { bytes.replaceSubrange(offset..<(offset + 4), with: [0xFF, 0xFF, 0xFF, 0xFF]) }
        let dataOffset = try #require(bytes.range(of: Data("data".utf8))).lowerBound
        bytes.replaceSubrange((dataOffset + 4)..<(dataOffset + 8), with: [0xFF, 0xFF, 0xFF, 0xFF])
        let stream = try StreamProcess(["--json", "--rate", "8000"])  // the header wins over the declared rate
        stream.send(bytes)
        let (lines, errors, status) = stream.finish()
        #expect(status == 0, "\(errors)")
        #expect(lines.count == 1)
        let (s0, _) = StreamFixture.soundSpan(try StreamFixture.speech("03-library.wav"))
        #expect(abs(try decode(lines[0]).start - s0) < 0.1)
    }

    @Test func closedStdoutEndsQuietly() throws {
        let a = try StreamFixture.speech("01-welcome.wav")
        let stream = try StreamProcess([])
        let utterance = StreamFixture.s16le(a + StreamFixture.silence(1))
        stream.send(utterance)
        #expect(stream.readLine(timeout: 120) != nil)
        try stream.stdout.fileHandleForReading.close()  // like `| head -1`
        for _ in 0..<3 { stream.send(utterance) }
        try? stream.stdin.fileHandleForWriting.close()
        stream.process.waitUntilExit()
        let errors = String(decoding: stream.stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(stream.process.terminationStatus == 0)
        #expect(errors.isEmpty, "\(errors)")
    }

    @Test(arguments: [
        ("garbage RIFF header", Data("RIFF\u{0}\u{0}\u{0}\u{0}JUNKJUNKJUNKJUNK".utf8), "not WAVE"),
        ("truncated WAV header", Data("RIFF\u{24}\u{0}\u{0}\u{0}WAVEfmt \u{10}\u{0}".utf8), "truncated WAV header"),
        ("odd trailing byte", Data(repeating: 0, count: 3201), "trailing byte"),
    ])
    func badInputGivesOneErrorLine(name: String, bytes: Data, expected: String) throws {
        let stream = try StreamProcess([])
        stream.send(bytes)
        let (_, errors, status) = stream.finish()
        #expect(status == 1, "\(name)")
        let lines = errors.split(separator: "\n")
        #expect(lines.count == 1, "\(name): \(errors)")
        #expect(errors.contains("stdin") && errors.contains(expected), "\(name): \(errors)")
    }

    @Test func wrongDeclaredFormatIsCaught() throws {
        // s16le speech declared as f32le: the floats come out as garbage and must be refused.
        let stream = try StreamProcess(["--format", "f32le"])
        // One second of speech: less than a pipe buffer, so writing cannot block once lasr stops reading.
        stream.send(StreamFixture.s16le(Array(try StreamFixture.speech("01-welcome.wav")[8000..<24000])))
        let (_, errors, status) = stream.finish()
        #expect(status == 1)
        #expect(errors.contains("--format"), "\(errors)")
    }
}

@Suite struct StreamReaderTests {
    @Test func chunkedBytesDecodeLikeOneBlock() throws {
        let samples: [Float] = (0..<1000).map { Float(sin(Double($0) * 0.1)) * 0.5 }
        let bytes = [UInt8](StreamFixture.s16le(samples))
        let whole = PCMStreamReader(declared: PCMFormat(encoding: .s16le, sampleRate: 16000, channels: 1))
        let expected = try bytes.withUnsafeBytes { try whole.push($0) }
        let chunked = PCMStreamReader(declared: PCMFormat(encoding: .s16le, sampleRate: 16000, channels: 1))
        var got: [Float] = []
        var i = 0
        for size in [1, 3, 2, 7, 100, 1] + [Int](repeating: 333, count: 10) where i < bytes.count {
            let end = min(bytes.count, i + size)
            got += try bytes[i..<end].withUnsafeBytes { try chunked.push($0) }
            i = end
        }
        got += try bytes[i...].withUnsafeBytes { try chunked.push($0) }
        try chunked.finish()
        #expect(got == expected && got.count == 1000)
    }

    /// A WAV stream cut before the end its header declares, in the middle of a frame:
    /// what arrived is decoded, and the warning says how much was promised.
    @Test func wavStreamCutShortIsWarnedNotFailed() throws {
        let path = TestSupport.packageRoot.appendingPathComponent("audio/01-welcome.wav").path
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)).prefix(5001))
        let reader = PCMStreamReader(declared: PCMFormat(encoding: .f32le, sampleRate: 8000, channels: 2))
        let samples = try bytes.withUnsafeBytes { try reader.push($0) }
        #expect(samples.count == (5000 - 44) / 2 && reader.format?.encoding == .s16le)
        let warning = try #require(try reader.finish())
        #expect(warning.kind == .truncated && warning.path == "stdin")
        #expect(warning.reason.contains("declares 4.896 s") && warning.reason.contains("ended after 0.155 s"), "\(warning.reason)")
        // A whole stream has nothing to say.
        let whole = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let complete = PCMStreamReader(declared: PCMFormat(encoding: .s16le, sampleRate: 16000, channels: 1))
        _ = try whole.withUnsafeBytes { try complete.push($0) }
        #expect(try complete.finish() == nil)
    }

    @Test func endpointerFindsBurstsOfSound() {
        let rate = 16000
        var x = StreamFixture.silence(1)
        x += TestSupport.sine(frequency: 300, rate: rate, count: rate, amplitude: 0.3)  // 1.0–2.0 s
        x += StreamFixture.silence(1)
        x += TestSupport.sine(frequency: 500, rate: rate, count: rate / 20, amplitude: 0.3)  // a 50 ms click
        x += StreamFixture.silence(1)
        let endpointer = Endpointer()
        var utterances = endpointer.push(x)
        utterances += endpointer.finish()
        #expect(utterances.count == 1)
        #expect(abs(utterances[0].speechStart - 1.0) < 0.02 && abs(utterances[0].speechEnd - 2.0) < 0.02)
    }

    @Test func longSpeechIsCutAtItsQuietestPoint() {
        let rate = 16000
        // 25 s of "syllables" (a tone modulated at 4 Hz, so the noise floor stays below it) with a dip at 16.75–17 s.
        var x = TestSupport.sine(frequency: 300, rate: rate, count: 25 * rate, amplitude: 0.3)
        for i in x.indices { x[i] *= Float(0.55 + 0.45 * sin(2 * Double.pi * 4 * Double(i) / Double(rate))) }
        for i in (17 * rate - 4000)..<(17 * rate) { x[i] *= 0.02 }
        var config = EndpointerConfig()
        config.maxUtterance = 20
        let endpointer = Endpointer(config: config)
        var utterances = endpointer.push(x)
        utterances += endpointer.finish()
        #expect(utterances.count == 2)
        #expect(abs(utterances[0].speechEnd - 16.8) < 0.3, "cut at \(utterances[0].speechEnd)")
        #expect(utterances.allSatisfy { Double($0.samples.count) / Double(rate) <= 20.5 })
    }
    @Test func closingUtteranceForeseesWhatTheEndpointEmits() throws {
        let rate = 16000
        let tone = TestSupport.sine(frequency: 300, rate: rate, count: rate, amplitude: 0.3)
        let endpointer = Endpointer()
        #expect(endpointer.push(StreamFixture.silence(0.5) + tone).isEmpty)
        #expect(endpointer.closingUtterance == nil)  // speech goes on
        #expect(endpointer.push(StreamFixture.silence(0.25)).isEmpty)
        #expect(endpointer.closingSpan == nil)  // not yet foreseeAfter (0.3 s) of silence
        #expect(endpointer.push(StreamFixture.silence(0.1)).isEmpty)
        let foreseen = try #require(endpointer.closingUtterance)
        let closed = endpointer.push(StreamFixture.silence(0.2))
        #expect(closed.count == 1)
        #expect(endpointer.closingUtterance == nil)
        #expect(closed[0].samples == foreseen.samples)
        #expect(closed[0].audioStart == foreseen.audioStart && closed[0].speechStart == foreseen.speechStart
            && closed[0].speechEnd == foreseen.speechEnd)

        // Speech resuming inside the trailing silence takes the offer back, and the
        // utterance that closes then covers both bursts.
        #expect(endpointer.push(tone + StreamFixture.silence(0.4)).isEmpty)
        let early = try #require(endpointer.closingUtterance)
        #expect(endpointer.push(tone).isEmpty)
        #expect(endpointer.closingUtterance == nil)
        var rest = endpointer.push(StreamFixture.silence(1))
        rest += endpointer.finish()
        #expect(rest.count == 1)
        #expect(rest[0].speechStart == early.speechStart && rest[0].speechEnd > early.speechEnd + 1.3)
    }

    /// Speech with a pause longer than `foreseeAfter` but shorter than the trailing
    /// silence inside the first utterance, then a second utterance.
    static func pausedSpeech() throws -> [Float] {
        func trimmed(_ name: String) throws -> [Float] {  // the files' own silence would lengthen the pause
            let x = try StreamFixture.speech(name), (first, last) = StreamFixture.soundSpan(x)
            let rate = Double(StreamFixture.rate)
            return Array(x[max(0, Int((first - 0.05) * rate))..<min(x.count, Int((last + 0.05) * rate))])
        }
        let a = try trimmed("01-welcome.wav"), b = try trimmed("02-weather.wav")
        return StreamFixture.silence(0.5) + a + StreamFixture.silence(0.35) + b + StreamFixture.silence(1.2) + a
            + StreamFixture.silence(1.2)
    }

    /// Feeds 20 ms chunks, each time waiting for the decoder to be idle, so that a
    /// speculative decoding always starts where the recognizer offers one.
    static func finals(foreseeAfter: Double?, audio: [Float]) throws -> ([StreamResult], (finals: Int, foreseen: Int, speculative: Int)) {
        let model = try LasrModel(directory: DefaultModelTests.directory)
        final class Results: @unchecked Sendable { let lock = NSLock(); var all: [StreamResult] = [] }
        let results = Results()
        var config = EndpointerConfig()
        config.foreseeAfter = foreseeAfter
        let recognizer = StreamingRecognizer(model: model, options: DecodingOptions(model.config.decoding, lm: model.config.lm),
                                             inputRate: 16000, inputChannels: 1, endpointer: config) { result in
            results.lock.lock(); results.all.append(result); results.lock.unlock()
        }
        for start in stride(from: 0, to: audio.count, by: 320) {
            recognizer.feed(Array(audio[start..<min(audio.count, start + 320)]))
            while recognizer.pending > 0 { Thread.sleep(forTimeInterval: 0.001) }
        }
        recognizer.finish()
        return (results.all, recognizer.decodings)
    }

    @Test func speculativeDecodingGivesTheSameFinalsEarlier() throws {
        let audio = try Self.pausedSpeech()
        let (plain, plainCount) = try Self.finals(foreseeAfter: nil, audio: audio)
        let (ahead, aheadCount) = try Self.finals(foreseeAfter: EndpointerConfig().foreseeAfter, audio: audio)
        #expect(plain.count == 2 && plainCount.finals == 2)
        #expect(plainCount.speculative == 0)
        // Both endpoints were foreseen; the pause inside the first utterance started a
        // decoding that was dropped when the second sentence began.
        #expect(aheadCount.finals == 2 && aheadCount.foreseen == 2 && aheadCount.speculative == 3)
        #expect(ahead.map(\.text) == plain.map(\.text))
        #expect(ahead.map(\.start) == plain.map(\.start) && ahead.map(\.end) == plain.map(\.end))
        #expect(ahead.map { $0.words.map(\.start) } == plain.map { $0.words.map(\.start) })
        #expect(plain[0].text.split(separator: " ").count > 12, "the first final covers both sentences: \(plain[0].text)")
    }
}
