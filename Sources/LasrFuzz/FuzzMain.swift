import Foundation
#if LASR_FUZZ
import CLibFuzzer
#endif

/// The `main` of every fuzz executable.
///
/// The executables keep a Swift `main` in both builds: on Linux SwiftPM links an
/// executable with its entry point renamed (`main=<module>_main`), which leaves no
/// room for libFuzzer's own `main`. So the fuzz build (`-DLASR_FUZZ`, docs/fuzzing.md)
/// hands control to libFuzzer through `LLVMFuzzerRunDriver`, and the ordinary build
/// replays the files named on the command line.
public enum FuzzMain {
    nonisolated(unsafe) private static var target = FuzzTarget.audio

    public static func run(_ target: FuzzTarget) -> Never {
        #if LASR_FUZZ
        self.target = target
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            FuzzMain.target.run(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        })
        #else
        exit(FuzzReplay.main(target))
        #endif
    }
}
