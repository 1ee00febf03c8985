import Foundation
import LasrCore
import NIOCore

/// The server's private folder for uploads (mode 0700, under $TMPDIR), removed on shutdown.
final class UploadDirectory: Sendable {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/lasr-serve-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw LasrError(.invalidArgument, path: NSTemporaryDirectory(), "cannot create a temporary folder for uploads: \(String(cString: strerror(errno)))")
        }
        path = String(cString: made)
    }

    /// Removes the folder and whatever is still in it.
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// One upload as a private file (mode 0600) for libsndfile, which reads files and
/// not memory; the file is removed when the last holder lets go of it — the request,
/// or the worker still decoding it after the request gave up.
final class TemporaryUpload: @unchecked Sendable {
    let path: String
    private let lock = NSLock()
    private var removed = false

    /// Writes `bytes`; `filename` (the client's) gives only the extension, which helps
    /// libsndfile tell headerless formats apart. No part of a request names a path.
    init(_ bytes: ByteBuffer, filename: String?, in directory: UploadDirectory) throws {
        let ext = ((filename ?? "") as NSString).pathExtension.lowercased()
        let suffix = (1...8).contains(ext.count) && ext.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) ? "." + ext : ""
        var template = Array((directory.path + "/upload-XXXXXX" + suffix).utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemps($0.baseAddress!, Int32(suffix.utf8.count)) }
        guard fd >= 0 else {
            throw LasrError(.readFailed, "cannot store the upload: \(String(cString: strerror(errno)))")
        }
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { close(fd) }
        var written = 0
        let failed: Bool = bytes.withUnsafeReadableBytes { raw in
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 { if errno == EINTR { continue }; return true }
                written += n
            }
            return false
        }
        if failed {
            unlink(path)
            throw LasrError(.readFailed, "cannot store the upload: \(String(cString: strerror(errno)))")
        }
    }

    /// Removes the file now (once): the worker does so as soon as it has decoded it.
    func remove() {
        lock.lock(); defer { lock.unlock() }
        guard !removed else { return }
        removed = true
        unlink(path)
    }

    deinit { remove() }
}
