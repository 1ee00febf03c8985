/// Cuts long audio into segments the model decodes well: at most `maxSeconds` long,
/// each cut placed at the quietest 100 ms of the last `searchSeconds` before the limit,
/// so words are rarely split.
public struct Segmenter: Sendable {
    public var maxSeconds: Double
    public var searchSeconds: Double

    public init(maxSeconds: Double = 20, searchSeconds: Double = 5) {
        precondition(maxSeconds > 1)
        self.maxSeconds = maxSeconds
        self.searchSeconds = min(searchSeconds, maxSeconds / 2)
    }

    /// Sample ranges covering `samples` in order.
    public func segments(_ samples: [Float], sampleRate: Int) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var start = 0
        while let cut = samples.withUnsafeBufferPointer({ cut(UnsafeBufferPointer(rebasing: $0[start...]), sampleRate: sampleRate) }) {
            result.append(start..<(start + cut))
            start += cut
        }
        result.append(start..<samples.count)
        return result
    }

    /// Where to end the first segment of `samples` (an index into it), or nil when
    /// they fit in one segment. Streams call this on their buffer as it fills, and get
    /// the same cuts as `segments` on the whole signal.
    public func cut(_ samples: UnsafeBufferPointer<Float>, sampleRate: Int) -> Int? {
        let maxLength = Int(maxSeconds * Double(sampleRate))
        guard samples.count > maxLength else { return nil }
        let window = sampleRate / 10, hop = sampleRate / 100
        var bestCut = maxLength, bestEnergy = Float.infinity
        var position = maxLength - Int(searchSeconds * Double(sampleRate))
        while position + window <= maxLength {
            var energy: Float = 0
            for i in position..<(position + window) { energy += samples[i] * samples[i] }
            if energy < bestEnergy { bestEnergy = energy; bestCut = position + window / 2 }
            position += hop
        }
        return bestCut
    }
}
