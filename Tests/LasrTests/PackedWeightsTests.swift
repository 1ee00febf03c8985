import Foundation
import LasrCore
import LasrNN
import Testing

/// The packed few-row product against a plain double-precision sum, on shapes that
/// leave a partial group of outputs and a partial block of rows.
@Suite struct PackedWeightsTests {
    /// Weights that are all exactly float16 (as in lasr models) are kept in half
    /// precision; any other value keeps the panels in single precision. Both paths must
    /// give the plain product.
    @Test(arguments: [(1, false), (3, false), (4, false), (5, false), (8, false), (9, false), (1, true), (5, true), (8, true)])
    func matchesThePlainProduct(rows: Int, halfWeights: Bool) {
        let n = 37, k = 29, ld = 31
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Float {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: seed >> 11) % 2000) / 1000 - 1
        }
        // Rows of ld floats, the last ld − k unused; multiples of 1/1024 in (−1, 1) are exact in float16.
        let w = (0..<(n * ld)).map { _ in halfWeights ? (next() * 1024).rounded() / 1024 : next() }
        let x = (0..<(rows * k)).map { _ in next() }
        let start = (0..<(rows * n)).map { _ in next() }
        var y = start
        let packed = w.withUnsafeBufferPointer { PackedWeights($0.baseAddress!, outputs: n, inputs: k, ldw: ld) }
        #if !(os(macOS) && arch(x86_64))
        #expect(packed.isHalfPrecision == halfWeights)
        #endif
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { packed.accumulate(xp.baseAddress!, rows: rows, into: $0.baseAddress!) }
        }
        for r in 0..<rows {
            for o in 0..<n {
                var sum = Double(start[r * n + o]), absoluteSum = abs(sum)
                for j in 0..<k {
                    let term = Double(x[r * k + j]) * Double(w[o * ld + j])
                    sum += term
                    absoluteSum += abs(term)
                }
                // k products and the start: k + 1 float32 additions in whatever order the kernel takes.
                let bound = TestSupport.Float32Bounds.dotProduct(terms: k + 1, absoluteSum: absoluteSum)
                #expect(abs(Double(y[r * n + o]) - sum) <= bound, "row \(r) output \(o)")
            }
        }
    }
}

/// The layers' packed path (taken in AVX2 builds; forced on here so every build tests
/// it) against their `sgemm`/`sgemv` path.
@Suite struct FewRowLayerTests {
    static func values(_ count: Int, seed: Int) -> [Float] {
        (0..<count).map { i in Float(sin(Double(i * 7 + seed) * 0.37)) }
    }

    /// 20 rows (beam 20) take the packed kernel; 33 rows, more than `PackedWeights.maxRows`, take `sgemm`.
    @Test(arguments: [(1, true, false), (8, true, false), (8, false, false), (5, true, true), (20, true, false),
                      (PackedWeights.maxRows + 1, true, false)])
    func linearAgrees(rows: Int, bias: Bool, accumulate: Bool) {
        let k = 21, n = 19
        let plain = Linear(inFeatures: k, outFeatures: n, weight: Self.values(n * k, seed: 1),
                           bias: bias ? Self.values(n, seed: 2) : nil)
        let packed = plain.forFewRows(true)
        let x = Self.values(rows * k, seed: 3)
        var a = Self.values(rows * n, seed: 4), b = a
        x.withUnsafeBufferPointer { xp in
            a.withUnsafeMutableBufferPointer { plain.apply(xp.baseAddress!, rows: rows, into: $0.baseAddress!, accumulate: accumulate) }
            b.withUnsafeMutableBufferPointer { packed.apply(xp.baseAddress!, rows: rows, into: $0.baseAddress!, accumulate: accumulate) }
        }
        // Each path is within the float32 dot-product bound of the exact value (k products,
        // the bias and what was accumulated), so they are within twice it of each other.
        let initial = Self.values(rows * n, seed: 4)
        for r in 0..<rows {
            for o in 0..<n {
                var absoluteSum = abs(Double(plain.bias?[o] ?? 0)) + (accumulate ? abs(Double(initial[r * n + o])) : 0)
                for j in 0..<k { absoluteSum += abs(Double(x[r * k + j]) * Double(plain.weight[o * k + j])) }
                let bound = 2 * TestSupport.Float32Bounds.dotProduct(terms: k + 2, absoluteSum: absoluteSum)
                let i = r * n + o
                #expect(Double(abs(a[i] - b[i])) <= bound, "element \(i)")
            }
        }
    }

    @Test func lstmStepAgrees() throws {
        let store = WeightStore(file: try SafeTensorsFile(path: TestSupport.fixture("tiny-model/model.safetensors")))
        let input = 32 + 48, h = 48, rows = 6
        let plain = try LSTMCell(store, "decoder.lstm", input: input, hidden: h)
        let packed = plain.forFewRows(true)
        let xh = Self.values(rows * (input + h), seed: 5)
        var results: [[Float]] = []
        for cellModel in [plain, packed] {
            var cell = Self.values(rows * h, seed: 6), hidden = [Float](repeating: 0, count: rows * h)
            var gates = [Float](repeating: 0, count: rows * 4 * h)
            xh.withUnsafeBufferPointer { x in
                cell.withUnsafeMutableBufferPointer { c in
                    hidden.withUnsafeMutableBufferPointer { s in
                        gates.withUnsafeMutableBufferPointer { g in
                            cellModel.loadBias(into: g.baseAddress!, rows: rows)
                            cellModel.step(xh: x.baseAddress!, rows: rows, cell: c.baseAddress!, hidden: s.baseAddress!,
                                           gates: g.baseAddress!)
                        }
                    }
                }
            }
            results.append(hidden + cell)
        }
        #expect(results[0].contains { $0 != 0 })
        // The gates are dot products of [x | h] with the cell's weights; the two paths add
        // them in different orders, so each gate may differ by twice the float32 bound.
        let raw = WeightStore(file: try SafeTensorsFile(path: TestSupport.fixture("tiny-model/model.safetensors")))
        let wih = try raw.take("decoder.lstm.weight_ih", [4 * h, input]), whh = try raw.take("decoder.lstm.weight_hh", [4 * h, h])
        let bias = zip(try raw.take("decoder.lstm.bias_ih", [4 * h]), try raw.take("decoder.lstm.bias_hh", [4 * h])).map(+)
        var gateError = 0.0
        for r in 0..<rows {
            for g in 0..<(4 * h) {
                var absoluteSum = abs(Double(bias[g]))
                for j in 0..<input { absoluteSum += abs(Double(xh[r * (input + h) + j]) * Double(wih[g * input + j])) }
                for j in 0..<h { absoluteSum += abs(Double(xh[r * (input + h) + input + j]) * Double(whh[g * h + j])) }
                gateError = max(gateError, 2 * TestSupport.Float32Bounds.dotProduct(terms: input + h + 1, absoluteSum: absoluteSum))
            }
        }
        // c' = σ(f)·c + σ(i)·tanh(g) and h' = σ(o)·tanh(c'): σ' ≤ 1/4, tanh' ≤ 1 and both are
        // bounded by 1, so a gate error δ moves c' by at most δ(|c|/4 + 5/4) and h' by δ/4 more;
        // the activations themselves are the same code on both paths.
        let largestCell = Self.values(rows * h, seed: 6).map { abs(Double($0)) }.max() ?? 0
        // Evaluating those products and sums in float32 rounds each path by a few ulps of |c| + 1.
        let evaluation = 8 * Double(Float.ulpOfOne) * (largestCell + 2)
        let cellBound = gateError * (largestCell / 4 + 1.25) + evaluation
        let hiddenBound = cellBound + gateError / 4 + evaluation
        for i in results[0].indices {
            let bound = i < rows * h ? hiddenBound : cellBound
            #expect(Double(abs(results[0][i] - results[1][i])) <= bound, "element \(i)")
        }
    }
}

/// `lasr bench` names the build it times, so that a portable binary's numbers are not
/// read as the machine's drift (the test runs the binary built with this test bundle).
@Suite struct BuildTargetTests {
    @Test func benchNamesItsBuild() throws {
        let run = try TestSupport.runLasr(["bench", "--stage", "features", "--feature-seconds", "1"])
        #expect(run.status == 0, "\(run.stderr)")
        let header = run.stdout.split(separator: "\n").first.map(String.init) ?? ""
        #expect(header.hasPrefix("lasr bench on "))
        #if LASR_AVX2
        #expect(header.hasSuffix(", AVX2 + FMA build"), "\(header)")
        #expect(!run.stderr.contains("warning"), "\(run.stderr)")
        #else
        #expect(header.hasSuffix(", portable build"), "\(header)")
        // A portable build on a CPU that could run the faster one says how to get it.
        #expect(run.stderr.contains("make build") == (BuildTarget.hostHasAVX2FMA == true), "\(run.stderr)")
        #endif
    }
}
