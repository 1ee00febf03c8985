import LasrNN
import Testing

/// The packed few-row product against a plain double-precision sum, on shapes that
/// leave a partial group of outputs and a partial block of rows.
@Suite struct PackedWeightsTests {
    @Test(arguments: [1, 3, 4, 5, 8, 9])
    func matchesThePlainProduct(rows: Int) {
        let n = 37, k = 29, ld = 31
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Float {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: seed >> 11) % 2000) / 1000 - 1
        }
        let w = (0..<(n * ld)).map { _ in next() }   // rows of ld floats, the last ld − k unused
        let x = (0..<(rows * k)).map { _ in next() }
        let start = (0..<(rows * n)).map { _ in next() }
        var y = start
        let packed = w.withUnsafeBufferPointer { PackedWeights($0.baseAddress!, outputs: n, inputs: k, ldw: ld) }
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { packed.accumulate(xp.baseAddress!, rows: rows, into: $0.baseAddress!) }
        }
        for r in 0..<rows {
            for o in 0..<n {
                var sum = Double(start[r * n + o])
                for j in 0..<k { sum += Double(x[r * k + j]) * Double(w[o * ld + j]) }
                #expect(abs(Double(y[r * n + o]) - sum) < 1e-5 * max(1, abs(sum)), "row \(r) output \(o)")
            }
        }
    }
}
