import ArgumentParser
import Foundation
import LasrCore

/// Where the CLI's errors are turned into stderr lines and exit codes, in one place.
enum Terminal {
    /// Prints one line on stderr: `lasr: MESSAGE`.
    static func warn(_ message: String) {
        FileHandle.standardError.write(Data("lasr: \(message)\n".utf8))
    }

    /// Prints `error` as one line; a `LasrError` already names its file and reason.
    static func report(_ error: Error) {
        if let error = error as? LasrError {
            warn(error.description)
        } else {
            warn(String(describing: error))
        }
    }
}

/// Counts the failures of a batch so each file's error is printed when it happens
/// and the exit status reports them at the end.
struct BatchOutcome {
    private(set) var total = 0
    private(set) var failed = 0

    mutating func succeeded() { total += 1 }

    mutating func failed(_ error: Error) {
        total += 1
        failed += 1
        Terminal.report(error)
    }

    /// Throws exit status 1 after a summary line when any item failed.
    func finish() throws {
        guard failed > 0 else { return }
        Terminal.warn("\(failed) of \(total) input\(total == 1 ? "" : "s") failed")
        throw ExitCode(1)
    }
}

/// Buffered text output to stdout or a file; large dumps (features as CSV) stay cheap.
final class TextSink {
    private let handle: FileHandle
    private var buffer = ""
    private let path: String?

    init(path: String?) throws {
        self.path = path
        if let path {
            guard FileManager.default.createFile(atPath: path, contents: nil),
                  let handle = FileHandle(forWritingAtPath: path) else {
                throw LasrError(.invalidArgument, path: path, "cannot create output file")
            }
            self.handle = handle
        } else {
            handle = FileHandle.standardOutput
        }
        buffer.reserveCapacity(1 << 16)
    }

    func write(_ text: String) {
        buffer += text
        if buffer.utf8.count >= 1 << 16 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        handle.write(Data(buffer.utf8))
        buffer.removeAll(keepingCapacity: true)
    }

    func close() {
        flush()
        if path != nil { try? handle.close() }
    }
}
