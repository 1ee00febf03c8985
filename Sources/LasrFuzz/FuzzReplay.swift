import Foundation

/// The `main` of a fuzz executable built without libFuzzer (the ordinary `swift build`):
/// it runs the target once on each file named on the command line, or on each file of
/// a named folder, so a finding can be replayed under a debugger without the fuzz build.
public enum FuzzReplay {
    public static func main(_ target: FuzzTarget, arguments: [String] = CommandLine.arguments) -> Int32 {
        let paths = arguments.dropFirst()
        if paths.isEmpty || paths.contains(where: { $0.hasPrefix("-") }) {
            print("usage: \(arguments.first ?? "fuzz-\(target.rawValue)") FILE|FOLDER ...")
            print("replays inputs through the \(target.rawValue) fuzz target; the libFuzzer build is `make fuzz` (docs/fuzzing.md)")
            return paths.isEmpty ? 2 : 0
        }
        var count = 0
        for path in paths {
            for file in files(path) {
                guard let data = FileManager.default.contents(atPath: file) else {
                    print("\(file): cannot read")
                    return 1
                }
                target.run([UInt8](data))
                count += 1
            }
        }
        print("\(target.rawValue): \(count) input(s) replayed, no crash")
        return 0
    }

    /// `path` itself, or the regular files in it when it is a folder, sorted.
    public static func files(_ path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return [path]
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.sorted().map { path + "/" + $0 }.filter {
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: $0, isDirectory: &isDir) && !isDir.boolValue
        }
    }
}
