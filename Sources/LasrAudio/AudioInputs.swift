import Foundation
import LasrCore

/// Turns the paths a user names on the command line into audio files.
public enum AudioInputs {
    /// File extensions taken from directories (files named directly are always tried).
    public static let audioExtensions: Set<String> = [
        "wav", "wave", "flac", "ogg", "oga", "opus", "aiff", "aif", "aifc", "au", "snd", "caf", "w64", "rf64", "mp3",
    ]

    /// One entry per file to process, in order: each named file as is, each
    /// directory replaced by the audio files under it (recursively, sorted).
    /// A missing path or a directory without audio becomes a failure entry, so a
    /// batch reports it and goes on with the rest.
    public static func expand(_ paths: [String]) -> [Result<String, LasrError>] {
        var result: [Result<String, LasrError>] = []
        let fm = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
                result.append(.failure(LasrError(.fileNotFound, path: path, "no such file or directory")))
                continue
            }
            guard isDirectory.boolValue else {
                result.append(.success(path))
                continue
            }
            let files = audioFiles(under: path)
            if files.isEmpty {
                let known = audioExtensions.sorted().joined(separator: ", ")
                result.append(.failure(LasrError(.noAudioInDirectory, path: path,
                                                 "directory holds no audio files (looked for: \(known))")))
            } else {
                result.append(contentsOf: files.map { .success($0) })
            }
        }
        return result
    }

    private static func audioFiles(under directory: String) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
        var files: [String] = []
        while let relative = walker.nextObject() as? String {
            let ext = (relative as NSString).pathExtension.lowercased()
            guard audioExtensions.contains(ext) else { continue }
            let full = (directory as NSString).appendingPathComponent(relative)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue {
                files.append(full)
            }
        }
        return files.sorted()
    }
}
