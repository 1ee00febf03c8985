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
        let maxLength = Int(maxSeconds * Double(sampleRate))
        guard samples.count > maxLength else { return [0..<samples.count] }
        let window = sampleRate / 10, hop = sampleRate / 100
        var result: [Range<Int>] = []
        var start = 0
        while samples.count - start > maxLength {
            let searchFrom = start + maxLength - Int(searchSeconds * Double(sampleRate))
            var bestCut = start + maxLength, bestEnergy = Float.infinity
            var position = searchFrom
            while position + window <= start + maxLength {
                var energy: Float = 0
                for i in position..<(position + window) { energy += samples[i] * samples[i] }
                if energy < bestEnergy { bestEnergy = energy; bestCut = position + window / 2 }
                position += hop
            }
            result.append(start..<bestCut)
            start = bestCut
        }
        result.append(start..<samples.count)
        return result
    }
}
