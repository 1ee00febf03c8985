import Foundation
import LasrNN
import Testing

@Suite struct ActivationTests {
    @Test func vectorExpIsAccurate() {
        var worst: Double = 0
        var x: Float = -80
        while x < 80 {
            let got = Activations.exp(SIMD8(repeating: x))[0]
            worst = max(worst, abs(Double(got) / Foundation.exp(Double(x)) - 1))
            x += 0.0137
        }
        #expect(worst < 1e-6, "relative error \(worst)")
    }

    @Test func tanhSigmoidAndSoftmax() {
        for x: Float in [-30, -3, -0.5, 0, 0.1, 2, 25] {
            #expect(abs(Activations.tanh(SIMD8(repeating: x))[0] - Foundation.tanh(x)) < 1e-6)
            #expect(abs(Activations.sigmoid(SIMD8(repeating: x))[0] - 1 / (1 + Foundation.exp(-x))) < 1e-6)
        }
        var row: [Float] = [1, 2, -.infinity, 3, 0.5, -1, 4, 2, 0, 1]
        row.withUnsafeMutableBufferPointer { Activations.softmax($0.baseAddress!, count: $0.count) }
        #expect(abs(row.reduce(0, +) - 1) < 1e-6)
        #expect(row[2] == 0)
        #expect(abs(row[6] / row[3] - Foundation.exp(1)) < 1e-5)
    }

    /// Whisper's GELU uses erf; the vector approximation stays within 1e-6 of libm's.
    @Test func geluMatchesTheErrorFunction() {
        let xs = stride(from: -12.0, through: 12.0, by: 0.013).map { Float($0) } + [0, -0.0, 30, -30]
        var y = xs
        y.withUnsafeMutableBufferPointer { Activations.gelu($0.baseAddress!, count: $0.count) }
        for (x, g) in zip(xs, y) {
            let exact = 0.5 * Double(x) * (1 + erf(Double(x) / 2.0.squareRoot()))
            #expect(abs(Double(g) - exact) < 1e-6 * max(1, abs(exact)), "gelu(\(x)) = \(g), expected \(exact)")
        }
    }
}
