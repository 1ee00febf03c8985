import Foundation
import LasrAudio
import Testing

@Suite struct ResamplerTests {
    /// Level of a tone after resampling, away from the edges where the filter sees zeros.
    func resampledLevel(frequency: Double, from inRate: Int, to outRate: Int) -> (input: Double, output: Double) {
        let input = TestSupport.sine(frequency: frequency, rate: inRate, count: inRate)  // 1 s
        let resampler = Resampler(inputRate: inRate, outputRate: outRate)
        var output: [Float] = []
        resampler.process(input, into: &output)
        resampler.finish(into: &output)
        let margin = outRate / 10
        return (TestSupport.rms(input), TestSupport.rms(output, margin..<(output.count - margin)))
    }

    @Test func passbandToneKeepsItsLevel() {
        let (input, output) = resampledLevel(frequency: 1000, from: 44100, to: 16000)
        let change = TestSupport.decibels(output / input)
        #expect(abs(change) < 0.1, "1 kHz tone changed by \(change) dB")
    }

    @Test(arguments: [9000.0, 11000.0, 15000.0, 20000.0])
    func toneAboveNewNyquistIsRemoved(frequency: Double) {
        let (input, output) = resampledLevel(frequency: frequency, from: 44100, to: 16000)
        let attenuation = TestSupport.decibels(output / input)
        #expect(attenuation < -60, "\(frequency) Hz tone only attenuated by \(-attenuation) dB")
    }

    @Test(arguments: [(8000, 16000), (22050, 16000), (48000, 16000), (16000, 16000), (11025, 16000)])
    func upAndDownsamplingKeepATone(rates: (Int, Int)) {
        let (input, output) = resampledLevel(frequency: 440, from: rates.0, to: rates.1)
        #expect(abs(TestSupport.decibels(output / input)) < 0.1)
    }

    @Test func outputIsTimeAlignedWithInput() {
        // A 300 Hz tone resampled must line up sample for sample with the same tone generated at 16 kHz.
        let input = TestSupport.sine(frequency: 300, rate: 44100, count: 44100)
        let expected = TestSupport.sine(frequency: 300, rate: 16000, count: 16000)
        let resampler = Resampler(inputRate: 44100, outputRate: 16000)
        var output: [Float] = []
        resampler.process(input, into: &output)
        resampler.finish(into: &output)
        #expect(output.count == 16000)
        var maxError: Float = 0
        for i in 1600..<14400 { maxError = max(maxError, abs(output[i] - expected[i])) }
        #expect(maxError < 1e-3)
    }

    @Test func chunkedStreamEqualsOneShot() {
        var input: [Float] = []
        var seed: UInt64 = 42
        for _ in 0..<30000 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            input.append(Float(Int64(bitPattern: seed >> 11) % 1000) / 1000)
        }
        let whole = Resampler(inputRate: 44100, outputRate: 16000)
        var expected: [Float] = []
        whole.process(input, into: &expected)
        whole.finish(into: &expected)

        let streamed = Resampler(inputRate: 44100, outputRate: 16000)
        var output: [Float] = []
        var start = 0
        for size in [1, 7, 100, 4096, 333, 9999] where start < input.count {
            let end = min(input.count, start + size)
            streamed.process(Array(input[start..<end]), into: &output)
            start = end
        }
        streamed.process(Array(input[start...]), into: &output)
        streamed.finish(into: &output)
        #expect(output == expected)
        #expect(output.count == Resampler.outputCount(inputCount: input.count, inputRate: 44100, outputRate: 16000))
    }

    @Test func oddRatioUsesTheUntabulatedPath() {
        // 44101/16000 reduces to nothing smaller than 16000 phases: taps are computed per sample.
        let (input, output) = resampledLevel(frequency: 1000, from: 44101, to: 16000)
        #expect(abs(TestSupport.decibels(output / input)) < 0.1)
    }
}
