import Foundation

/// Process memory figures for benchmarks.
public enum ResourceUsage {
    /// Peak resident set size of this process in bytes (Linux: VmHWM; elsewhere: ru_maxrss).
    public static func peakResidentBytes() -> Int {
        #if os(Linux)
        if let kb = statusField("VmHWM:") { return kb * 1024 }
        #endif
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Int(usage.ru_maxrss)
        #endif
    }

    /// Current resident set size in bytes, where the platform reports it (Linux), else the peak.
    public static func residentBytes() -> Int {
        #if os(Linux)
        if let kb = statusField("VmRSS:") { return kb * 1024 }
        #endif
        return peakResidentBytes()
    }

    /// Restarts the peak-RSS count from the current RSS (Linux only), so a benchmark
    /// can measure the peak of one stage. Returns false where that is not possible.
    @discardableResult
    public static func resetPeak() -> Bool {
        #if os(Linux)
        return (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil
        #else
        return false
        #endif
    }

    private static func statusField(_ name: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            return Int(line.dropFirst(name.count).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
        }
        return nil
    }
}
