import Foundation

/// Voice-activity detection and endpointing for a 16 kHz mono stream.
///
/// The stream is cut into 10 ms frames. A frame is speech when its energy is more
/// than `marginDB` above the noise floor — the quietest frame of the last
/// `floorWindow` seconds — and above `minimumDB` (dBFS). An utterance opens at the
/// first speech frame (with `preRoll` of audio before it), is kept if it holds at
/// least `minSpeech` of speech, and closes after `trailingSilence` without speech;
/// it then carries `postRoll` of audio after its last speech frame. An utterance
/// longer than `maxUtterance` is cut at its quietest 10 ms frame within the last
/// `cutSearch` seconds, and the rest starts the next one.
public struct EndpointerConfig: Sendable, Equatable {
    public var marginDB: Double = 12
    public var minimumDB: Double = -55
    public var floorWindow: Double = 2
    public var minSpeech: Double = 0.2
    public var trailingSilence: Double = 0.5
    public var maxUtterance: Double = 20
    public var cutSearch: Double = 5
    public var preRoll: Double = 0.2
    public var postRoll: Double = 0.2
    /// Silence after which `Endpointer.closingUtterance` offers the utterance the endpoint
    /// will emit (at least `postRoll`, whose audio it carries): a recognizer decodes it in
    /// the rest of `trailingSilence`. Later than `postRoll` so that the pauses inside a
    /// sentence, most shorter than this, do not each start a decoding that is thrown away.
    /// nil never offers it: decoding starts at the endpoint (`lasr stream --no-early-decode`).
    public var foreseeAfter: Double? = 0.3

    public init() {}
}

/// A finished (or, for partial results, still open) stretch of speech.
public struct Utterance: Sendable {
    /// Audio from `audioStart` seconds of the stream on: speech plus pre- and post-roll.
    public var samples: [Float]
    public var audioStart: Double
    /// First and last speech frame, in seconds from the stream start.
    public var speechStart: Double
    public var speechEnd: Double
}

public final class Endpointer {
    public let config: EndpointerConfig
    public let sampleRate: Int
    private let frame: Int
    /// Samples not yet making a whole frame.
    private var partialFrame: [Float] = []
    /// Total frames seen.
    private var frames = 0
    /// Energies (dB) of the last `floorWindow` seconds, for the noise floor.
    private var recentEnergy: [Double] = []
    private var recentHead = 0
    /// Audio kept while idle, for the pre-roll.
    private var history: [Float] = []

    // The open utterance.
    private var open: [Float] = []
    private var openEnergy: [Double] = []
    private var openStartFrame = 0
    private var speechStartFrame = 0
    private var lastSpeechFrame = 0
    private var speechFrames = 0
    private var silentFrames = 0
    private var active = false

    public init(config: EndpointerConfig = EndpointerConfig(), sampleRate: Int = 16000) {
        self.config = config
        self.sampleRate = sampleRate
        frame = sampleRate / 100
    }

    /// Seconds of stream seen.
    public var elapsed: Double { Double(frames * frame + partialFrame.count) / Double(sampleRate) }

    /// The open utterance so far, if speech is in progress (for partial results).
    public var openUtterance: Utterance? {
        guard active, speechFrames * 10 >= Int(config.minSpeech * 1000) else { return nil }
        return Utterance(samples: open, audioStart: seconds(openStartFrame), speechStart: seconds(speechStartFrame),
                         speechEnd: seconds(lastSpeechFrame + 1))
    }

    /// The utterance the endpoint will emit if no speech comes before it, offered from
    /// `foreseeAfter` of silence after the last speech frame (its audio ends `postRoll`
    /// after that frame, so it is known by then) until the utterance closes; nil before,
    /// after and while speech goes on. A recognizer can decode it during the rest of the
    /// trailing silence, ahead of the endpoint.
    public var closingUtterance: Utterance? {
        closingSpan == nil ? nil : closed()
    }

    /// Where `closingUtterance` starts and its speech ends, in seconds of the stream,
    /// without copying its audio: a caller polling after every push asks for the
    /// utterance only when this changes.
    public var closingSpan: (audioStart: Double, speechEnd: Double)? {
        guard let foresee = config.foreseeAfter, active,
              silentFrames >= Int((max(foresee, config.postRoll) * 100).rounded()),
              Double(speechFrames) / 100 >= config.minSpeech else {
            return nil
        }
        return (seconds(openStartFrame), seconds(lastSpeechFrame + 1))
    }

    /// Feeds samples; returns the utterances they complete.
    public func push(_ samples: [Float]) -> [Utterance] {
        var done: [Utterance] = []
        partialFrame.append(contentsOf: samples)
        var start = 0
        while partialFrame.count - start >= frame {
            process(partialFrame[start..<(start + frame)], into: &done)
            start += frame
        }
        partialFrame.removeFirst(start)
        return done
    }

    /// Ends the stream: the open utterance, if it has enough speech, is returned.
    public func finish() -> [Utterance] {
        var done: [Utterance] = []
        if !partialFrame.isEmpty {
            process(ArraySlice(partialFrame + [Float](repeating: 0, count: frame - partialFrame.count)), into: &done)
            partialFrame = []
        }
        if active { close(into: &done) }
        return done
    }

    private func seconds(_ frameIndex: Int) -> Double { Double(frameIndex * frame) / Double(sampleRate) }

    private func process(_ samples: ArraySlice<Float>, into done: inout [Utterance]) {
        var sum: Float = 0
        for x in samples { sum += x * x }
        let energy = 10 * log10(Double(sum) / Double(samples.count) + 1e-12)
        let window = max(1, Int(config.floorWindow * 100))
        if recentEnergy.count < window { recentEnergy.append(energy) } else {
            recentEnergy[recentHead] = energy
            recentHead = (recentHead + 1) % window
        }
        let floor = recentEnergy.min() ?? energy
        let isSpeech = energy > max(floor + config.marginDB, config.minimumDB)
        let index = frames
        frames += 1

        if !active {
            if isSpeech {
                active = true
                open = history
                openEnergy = [Double](repeating: -120, count: history.count / frame)
                openStartFrame = index - history.count / frame
                speechStartFrame = index
                lastSpeechFrame = index
                speechFrames = 0
                silentFrames = 0
            } else {
                history.append(contentsOf: samples)
                let keep = Int(config.preRoll * 100) * frame
                if history.count > keep { history.removeFirst(history.count - keep) }
                return
            }
        }
        open.append(contentsOf: samples)
        openEnergy.append(energy)
        if isSpeech {
            speechFrames += 1
            silentFrames = 0
            lastSpeechFrame = index
        } else {
            silentFrames += 1
        }
        if Double(silentFrames) / 100 >= config.trailingSilence {
            close(into: &done)
        } else if Double(open.count) / Double(sampleRate) > config.maxUtterance {
            cut(into: &done)
        }
    }

    /// Emits the open utterance (if it holds enough speech) and goes idle.
    private func close(into done: inout [Utterance]) {
        active = false
        if let utterance = closed() { done.append(utterance) }
        let keep = Int(config.preRoll * 100) * frame
        history = Array(open.suffix(keep))
        open = []
        openEnergy = []
    }

    /// The open utterance as closing it now emits it: up to `postRoll` after its last
    /// speech frame, or nil if it holds too little speech.
    private func closed() -> Utterance? {
        guard Double(speechFrames) / 100 >= config.minSpeech else { return nil }
        let postFrames = Int(config.postRoll * 100)
        let endFrame = min(lastSpeechFrame + 1 + postFrames, openStartFrame + openEnergy.count)
        let length = (endFrame - openStartFrame) * frame
        return Utterance(samples: Array(open.prefix(length)), audioStart: seconds(openStartFrame),
                         speechStart: seconds(speechStartFrame), speechEnd: seconds(lastSpeechFrame + 1))
    }

    /// Splits an over-long utterance at its quietest frame near the end.
    private func cut(into done: inout [Utterance]) {
        let searchFrames = Int(config.cutSearch * 100)
        let from = max(1, openEnergy.count - searchFrames)
        var best = openEnergy.count - 1
        for i in from..<openEnergy.count where openEnergy[i] < openEnergy[best] { best = i }
        let head = Array(open.prefix(best * frame))
        done.append(Utterance(samples: head, audioStart: seconds(openStartFrame),
                              speechStart: seconds(speechStartFrame), speechEnd: seconds(openStartFrame + best)))
        open.removeFirst(best * frame)
        openEnergy.removeFirst(best)
        openStartFrame += best
        speechStartFrame = openStartFrame
        speechFrames = openEnergy.count  // the rest of a cut utterance counts as speech
    }
}
