import Foundation

/// The instruction set this binary was compiled for, beside what the CPU running it has.
///
/// `make build` targets the host CPU where it has AVX2 + FMA, and the decoder's beam
/// step then runs its packed kernel (`PackedWeights`); a plain `swift build -c release`
/// targets any x86-64 and steps the beam about 1.7 times as slowly (docs/benchmarks.md).
/// Benchmarks say which build they timed, so that numbers from two builds are not
/// mistaken for the machine's drift.
public enum BuildTarget {
    /// Whether this binary was built for AVX2 + FMA (`-target-cpu haswell -DLASR_AVX2`).
    public static let usesAVX2: Bool = {
        #if LASR_AVX2
        return true
        #else
        return false
        #endif
    }()

    /// Whether the CPU running this process has AVX2 and FMA; nil where that is not
    /// known (not Linux on x86-64).
    public static let hostHasAVX2FMA: Bool? = {
        #if os(Linux) && arch(x86_64)
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let set = Set(flags.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" }))
        return set.contains("avx2") && set.contains("fma")
        #else
        return nil
        #endif
    }()

    /// "AVX2 + FMA" or "portable", for benchmark headers.
    public static var name: String { usesAVX2 ? "AVX2 + FMA" : "portable" }

    /// A sentence for the user where this CPU could run a faster build than this one.
    public static var slowerThanHostWarning: String? {
        guard !usesAVX2, hostHasAVX2FMA == true else { return nil }
        return "this binary was built for any x86-64, but this CPU has AVX2 + FMA: `make build` "
            + "builds for it, and its beam step runs about 1.7 times as fast"
    }
}
