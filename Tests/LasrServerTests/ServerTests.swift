import Foundation
import Hummingbird
import HummingbirdTesting
@testable import LasrDecoding
import NIOCore
import Testing
@testable import LasrServer

private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let tinyModel = root.appendingPathComponent("Tests/LasrTests/Fixtures/tiny-model").path

private func form(_ fields: [(String, String)], file: (String, [UInt8])? = nil) throws -> MultipartForm {
    var body = ""
    for (name, value) in fields {
        body += "--XyZ\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n"
    }
    var buffer = ByteBuffer(string: body)
    if let (filename, bytes) = file {
        buffer.writeString("--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(filename)\"\r\nContent-Type: audio/wav\r\n\r\n")
        buffer.writeBytes(bytes)
        buffer.writeString("\r\n")
    }
    buffer.writeString("--XyZ--\r\n")
    return try MultipartForm(contentType: "multipart/form-data; boundary=XyZ", body: buffer)
}

private func registry() throws -> ModelRegistry { try ModelRegistry(directories: [tinyModel]) }

@Test func multipartFieldsFilesAndRepeatedFields() throws {
    let f = try form([("model", "tiny-model"), ("timestamp_granularities[]", "word"), ("timestamp_granularities[]", "segment")],
                     file: ("a b.wav", [0, 1, 2, 255]))
    #expect(f.text("model") == "tiny-model")
    #expect(f.values("timestamp_granularities[]") == ["word", "segment"])
    #expect(f.part("file")?.filename == "a b.wav")
    #expect(f.part("file").map { Array($0.body.readableBytesView) } == [0, 1, 2, 255])
}

@Test func notMultipartIsABadRequest() {
    #expect(throws: APIError.self) { try MultipartForm(contentType: "application/json", body: ByteBuffer(string: "{}")) }
    #expect(throws: APIError.self) { try MultipartForm(contentType: "multipart/form-data", body: ByteBuffer(string: "x")) }
}

private func parse(_ body: String, boundary: String = "XyZ") throws(APIError) -> MultipartForm {
    try MultipartForm(contentType: "multipart/form-data; boundary=\(boundary)", body: ByteBuffer(string: body))
}

private func invalidMultipart(_ body: String) -> String? {
    do {
        _ = try parse(body)
        return nil
    } catch {
        return error.code == "invalid_multipart" ? error.message : "code \(error.code ?? "none"): \(error.message)"
    }
}

@Test func multipartPreambleEpiloguePaddingAndQuotedNames() throws {
    // A preamble before the first boundary and an epilogue after the last are ignored;
    // spaces may follow a boundary; a quoted file name may hold ';'; a part may have no headers.
    let f = try parse("ignored preamble\r\n--XyZ  \r\nContent-Disposition: form-data; name=\"file\"; filename=\"a;b \\c.wav\"\r\n"
                      + "content-type: audio/wav\r\n\r\nRIFF\r\n--XyZ\r\n\r\nno headers\r\n--XyZ\r\nContent-Disposition: form-data; name=model\r\n\r\n"
                      + "default\r\n--XyZ--\r\nepilogue --XyZ\r\n")
    #expect(f.parts.count == 3)
    #expect(f.part("file")?.filename == "a;b \\c.wav" && f.part("file")?.contentType == "audio/wav" && f.part("file")?.text == "RIFF")
    #expect(f.parts[1].name == "" && f.parts[1].text == "no headers")
    #expect(f.text("model") == "default")
}

@Test func multipartBodiesKeepEveryByteUpToTheDelimiter() throws {
    // What looks like the delimiter but is not (another boundary, a bare "--XyZ" without
    // its CRLF, CR and LF alone) stays in the body, byte for byte.
    let tricky: [UInt8] = Array("\r\n--XyQ \r--XyZ\n--XyZ \r\n-".utf8) + [0, 13, 10, 255, 13]
    var buffer = ByteBuffer(string: "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\n\r\n")
    buffer.writeBytes(tricky)
    buffer.writeString("\r\n--XyZ\r\nContent-Disposition: form-data; name=\"empty\"\r\n\r\n\r\n--XyZ--")
    let f = try MultipartForm(contentType: "multipart/form-data; boundary=\"XyZ\"", body: buffer)
    #expect(f.part("file").map { Array($0.body.readableBytesView) } == tricky)
    #expect(f.text("empty") == "")
}

@Test func brokenMultipartSaysWhatIsWrong() {
    #expect(invalidMultipart("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue") ?? "" == "the multipart/form-data body cannot be parsed: part 1 never ends: the body stops before its closing boundary")
    #expect(invalidMultipart("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n") ?? "" == "the multipart/form-data body cannot be parsed: part 1's headers never end (no empty line)")
    #expect(invalidMultipart("--XyZ\r\nno colon here\r\n\r\nx\r\n--XyZ--") ?? "" == "the multipart/form-data body cannot be parsed: part 1 has a header line without ':'")
    #expect(invalidMultipart("--XyZ\r\n\r\nx\r\n--XyZ") ?? "" == "the multipart/form-data body cannot be parsed: it ends after a boundary, without the closing '--'")
    #expect(invalidMultipart("--XyZjunk\r\n\r\nx\r\n--XyZ--")?.contains("followed by something other than a line break") == true)
    #expect(invalidMultipart("no boundary anywhere")?.contains("never occurs") == true)
    #expect(invalidMultipart("--XyZ--") ?? "" == "the multipart/form-data body has no parts (is the boundary right?)")
    #expect(invalidMultipart(String(repeating: "--XyZ\r\n\r\n\r\n", count: 1001) + "--XyZ--")?.contains("more than 1000 parts") == true)
    #expect(throws: APIError.self) { try parse("--\(String(repeating: "b", count: 71))--", boundary: String(repeating: "b", count: 71)) }
}

@Test func randomFormsComeBackAsSentAndDamagedOnesAreErrors() throws {
    // Seeded (the Whisper sampler's SplitMix64): bodies full of CR, LF, '-' and pieces of the boundary, the parts read back
    // byte for byte; every truncation and many byte flips of the serialized form parse
    // or throw an APIError, and never trap.
    var rng = SplitMix64(seed: 0x5eed)
    let alphabet: [UInt8] = Array("\r\n-ab".utf8) + [0, 255]
    for round in 0..<200 {
        let boundary = "b" + String((0..<Int.random(in: 1...20, using: &rng)).map { _ in "ab-".randomElement(using: &rng)! })
        var sent: [(String, [UInt8])] = []
        var body = ByteBuffer()
        for i in 0..<Int.random(in: 1...4, using: &rng) {
            var bytes = (0..<Int.random(in: 0...64, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            if Bool.random(using: &rng) { bytes += Array("\r\n--\(boundary.dropLast())".utf8) }  // a near-delimiter
            sent.append(("f\(i)", bytes))
            body.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"f\(i)\"; filename=\"x\(round).bin\"\r\n\r\n")
            body.writeBytes(bytes)
            body.writeString("\r\n")
        }
        body.writeString("--\(boundary)--\r\n")
        let type = "multipart/form-data; boundary=\(boundary)"
        let form = try MultipartForm(contentType: type, body: body)
        #expect(form.parts.map(\.name) == sent.map(\.0))
        #expect(form.parts.map { Array($0.body.readableBytesView) } == sent.map(\.1))
        let whole = Array(body.readableBytesView)
        for cut in stride(from: 0, to: whole.count, by: 7) {
            var damaged = whole
            if round % 2 == 0 { damaged = Array(whole[..<cut]) } else { damaged[cut] ^= UInt8.random(in: 1...255, using: &rng) }
            do { _ = try MultipartForm(contentType: type, body: ByteBuffer(bytes: damaged)) } catch {}
        }
    }
}

@Test func connectionWatchFiresTheRequestsStillWaiting() {
    let connection = ConnectionWatch()
    let answered = Disconnection(), waiting = Disconnection()
    let fired = Counter()
    answered.whenGone { fired.add() }
    waiting.whenGone { fired.add(); fired.add() }
    connection.watch(answered)
    connection.watch(waiting)
    connection.forget(answered)  // its answer went out: the client closing later is nothing to it
    connection.close()
    #expect(fired.value == 2)
    // A request on a connection already closed is gone at once.
    let late = Disconnection()
    late.whenGone { fired.add() }
    connection.watch(late)
    #expect(fired.value == 3)
}

@Test func parametersNameTheFieldAtFault() throws {
    let models = try registry()
    let audio: (String, [UInt8]) = ("a.wav", [1, 2, 3])
    func param(_ fields: [(String, String)], file: (String, [UInt8])? = audio) -> (Int, String?) {
        do {
            _ = try TranscriptionParameters(form: try form(fields, file: file), models: models, maxUploadBytes: 2)
            return (200, nil)
        } catch let error as APIError {
            return (Int(error.status.code), error.param)
        } catch {
            return (0, "\(error)")
        }
    }
    #expect(param([("model", "tiny-model")], file: nil) == (400, "file"))
    #expect(param([("model", "tiny-model")], file: ("e.wav", [])) == (400, "file"))
    #expect(param([("model", "tiny-model")]) == (413, "file"))  // 3 bytes against a limit of 2
    let ok: (String, [UInt8]) = ("a.wav", [1])
    #expect(param([], file: ok) == (400, "model"))
    #expect(param([("model", "other")], file: ok) == (404, "model"))
    #expect(param([("model", "tiny-model"), ("response_format", "xml")], file: ok) == (400, "response_format"))
    #expect(param([("model", "tiny-model"), ("temperature", "2")], file: ok) == (400, "temperature"))
    #expect(param([("model", "tiny-model"), ("language", "fr")], file: ok) == (400, "language"))
    #expect(param([("model", "tiny-model"), ("timestamp_granularities[]", "char")], file: ok) == (400, "timestamp_granularities[]"))
    #expect(param([("model", "whisper-1"), ("language", "en"), ("temperature", "0.2")], file: ok) == (200, nil))
    let p = try TranscriptionParameters(form: try form([("model", "tiny-model")], file: ok), models: models, maxUploadBytes: 2)
    #expect(p.responseFormat == .json && p.granularities == [.segment])
}

@Test func errorBodiesHaveOpenAIsShape() throws {
    let error = APIError(.notFound, "no model 'x'", param: "model", code: "model_not_found")
    let doc = try JSONSerialization.jsonObject(with: Data(error.json.utf8)) as? [String: [String: Any]]
    #expect(doc?["error"]?["message"] as? String == "no model 'x'")
    #expect(doc?["error"]?["type"] as? String == "invalid_request_error")
    #expect(doc?["error"]?["param"] as? String == "model")
    #expect(doc?["error"]?["code"] as? String == "model_not_found")
    let busy = APIError(.serviceUnavailable, "busy", retryAfter: 3).response
    #expect(busy.headers[.retryAfter] == "3")
}

@Test func keyComparisonLooksAtEveryByte() {
    #expect(APIKeyMiddleware<BasicRequestContext>.constantTimeEqual("secret", "secret"))
    #expect(!APIKeyMiddleware<BasicRequestContext>.constantTimeEqual("secret", "secreT"))
    #expect(!APIKeyMiddleware<BasicRequestContext>.constantTimeEqual("secret", "secret2"))
    #expect(!APIKeyMiddleware<BasicRequestContext>.constantTimeEqual("", "x"))
}

@Test func verboseJSONHasWordsAndSegmentsAsAsked() throws {
    let word = TranscriptWord(text: "hello", start: 0.1, end: 0.5, confidence: 0.9)
    let segment = TranscriptSegment(start: 0, end: 1, text: "hello", words: [word], tokens: [], attention: [],
                                    frameDuration: 0.04, frameOffset: 0.0125, score: -0.2)
    let t = Transcript(source: "x", duration: 1.2, segments: [segment])
    let both = OpenAIResponse.verbose(t, granularities: [.word, .segment], language: "en")
    #expect(both.language == "english" && both.words?.first?.word == "hello" && both.segments?.count == 1)
    #expect(both.words?.first?.confidence == 0.9 && both.usage.seconds == 2)
    let wordsOnly = OpenAIResponse.verbose(t, granularities: [.word], language: "en")
    #expect(wordsOnly.segments == nil)
}

/// The timeout of the jobs the pool tests hold at a gate: a day, since it is not what they
/// test. Swift Testing runs these async tests beside synchronous ones that decode real
/// audio for minutes on the same few threads, and a test can wait that long to resume; with
/// 300 s the held job once timed out before its test went on (a CI run on a busy 2-core machine).
let heldJobTimeout = 86_400.0

@Test func fullQueueRefusesAtOnceAndTheRestRun() async throws {
    let pool = WorkerPool(workers: 1, queueLimit: 1)
    defer { pool.shutdown() }
    let gate = DispatchSemaphore(value: 0)
    // One running (held at the gate), one queued: the third is refused.
    async let first: Int = pool.run(timeout: heldJobTimeout) { _ in gate.wait(); return 1 }
    while pool.load.running == 0 { try await Task.sleep(for: .milliseconds(10)) }
    async let second: Int = pool.run(timeout: heldJobTimeout) { _ in 2 }
    while pool.load.queued == 0 { try await Task.sleep(for: .milliseconds(10)) }
    await #expect(throws: WorkerPool.Refusal.self) { try await pool.run(timeout: heldJobTimeout) { _ in 3 } }
    gate.signal()
    #expect(try await first == 1)
    #expect(try await second == 2)
}

@Test func queuedJobOfAGoneClientNeverRuns() async throws {
    let pool = WorkerPool(workers: 1, queueLimit: 4)
    defer { pool.shutdown() }
    let gate = DispatchSemaphore(value: 0)
    let ran = Counter()
    async let first: Int = pool.run(timeout: heldJobTimeout) { _ in gate.wait(); return 1 }
    while pool.load.running == 0 { try await Task.sleep(for: .milliseconds(10)) }
    let gone = Disconnection()
    let waiting = Task { try await pool.run(timeout: heldJobTimeout, abandonWhen: gone) { _ in ran.add(); return 2 } }
    while pool.load.queued == 0 { try await Task.sleep(for: .milliseconds(10)) }
    gone.fire()
    await #expect(throws: CancellationError.self) { try await waiting.value }
    #expect(pool.load.queued == 0)
    gate.signal()
    _ = try await first
    #expect(ran.value == 0)
}

@Test func timedOutJobAnswersAtOnce() async throws {
    let pool = WorkerPool(workers: 1, queueLimit: 4)
    defer { pool.shutdown() }
    let gate = DispatchSemaphore(value: 0)
    async let first: Int = pool.run(timeout: heldJobTimeout) { _ in gate.wait(); return 1 }
    while pool.load.running == 0 { try await Task.sleep(for: .milliseconds(10)) }
    await #expect(throws: WorkerPool.Refusal.timedOut) { try await pool.run(timeout: 0.2) { _ in 2 } }
    gate.signal()
    _ = try await first
}

private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}

@Test func routesOverHummingbirdsTestClient() async throws {
    var options = ServerOptions()
    options.modelDirectories = [tinyModel]
    options.workers = 1
    options.apiKey = "k"
    let state = try ServerState(options: options)
    defer { state.pool.shutdown(); state.uploads.remove() }
    let app = Application(router: Routes.http(state))
    try await app.test(.router) { client in
        // Still loading: /health says so, the API answers 503.
        try await client.execute(uri: "/health", method: .get) { #expect($0.status == .serviceUnavailable) }
        state.models = try registry()
        try await client.execute(uri: "/health", method: .get) { #expect($0.status == .ok) }
        try await client.execute(uri: "/v1/models", method: .get) { #expect($0.status == .unauthorized) }
        try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer k"]) { response in
            #expect(response.status == .ok)
            #expect(String(buffer: response.body).contains("\"id\":\"tiny-model\""))
        }
        try await client.execute(uri: "/", method: .get, headers: [.authorization: "Bearer k"]) { response in
            #expect(String(buffer: response.body).contains("<title>lasr</title>"))
            // Self-contained: nothing to fetch from elsewhere.
            #expect(!String(buffer: response.body).contains("http://") && !String(buffer: response.body).contains("https://"))
        }
    }
}
