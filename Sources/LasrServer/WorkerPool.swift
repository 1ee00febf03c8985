import Foundation
import LasrDecoding

/// A fixed set of decoding threads and a bounded queue in front of them.
///
/// Decoding is long, CPU-bound and blocking, so it runs on threads of its own rather
/// than on the event loops or Swift's cooperative pool, which must stay free to
/// accept connections and answer `/health` while every worker is busy. Each worker
/// keeps one recognizer per model (a recognizer holds an FFT plan and is meant for
/// one thread). A job whose client went away or whose time ran out is dropped from
/// the queue at once, and one already decoding stops at its next segment.
public final class WorkerPool: @unchecked Sendable {
    /// Why a job was not run.
    public enum Refusal: Error, Equatable {
        /// The queue is full; a retry after about `retryAfter` seconds may find room.
        case queueFull(retryAfter: Int)
        /// The pool is shutting down.
        case closed
        /// The job's time ran out before it finished.
        case timedOut
    }

    /// What a job sees of its worker: the worker's recognizers, and whether to stop.
    public final class Worker: @unchecked Sendable {
        private var transcribers: [String: any FileTranscriber] = [:]
        private let segmentSeconds: Double
        fileprivate var current: Job?

        fileprivate init(segmentSeconds: Double) { self.segmentSeconds = segmentSeconds }

        /// This worker's recognizer for `model`, made on first use, its cancellation hooked to the running job.
        public func transcriber(for model: ServedModel) -> any FileTranscriber {
            let transcriber = transcribers[model.name] ?? model.makeTranscriber(segmentSeconds: segmentSeconds)
            transcribers[model.name] = transcriber
            let job = current
            transcriber.isCancelled = { [weak job] in job?.isAbandoned ?? false }
            return transcriber
        }
    }

    fileprivate final class Job: @unchecked Sendable {
        let run: (Worker) -> Void
        /// Resumes the waiting request with a refusal; called at most once, and never after `run` started.
        let refuse: (any Error) -> Void
        private let lock = NSLock()
        private var abandoned = false
        init(run: @escaping (Worker) -> Void, refuse: @escaping (any Error) -> Void) {
            self.run = run
            self.refuse = refuse
        }
        var isAbandoned: Bool { lock.lock(); defer { lock.unlock() }; return abandoned }
        func abandon() { lock.lock(); abandoned = true; lock.unlock() }
    }

    public let workerCount: Int
    public let queueLimit: Int
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var running = 0
    private var closed = false
    private var threads: [Thread] = []
    private var exited = 0
    /// Mean seconds per job (exponentially weighted), for Retry-After.
    private var meanSeconds = 2.0
    private var abandonedJobs = 0

    public init(workers: Int, queueLimit: Int, segmentSeconds: Double = 20) {
        workerCount = max(1, workers)
        self.queueLimit = max(0, queueLimit)
        for i in 0..<workerCount {
            let worker = Worker(segmentSeconds: segmentSeconds)
            let thread = Thread { [unowned self] in self.loop(worker) }
            thread.name = "lasr-worker-\(i)"
            // Beam search and the encoder recurse little, but Whisper's decoder keeps large locals.
            thread.stackSize = 8 << 20
            threads.append(thread)
            thread.start()
        }
    }

    /// Jobs waiting and running now.
    public var load: (queued: Int, running: Int) {
        condition.lock(); defer { condition.unlock() }
        return (queue.count, running)
    }

    /// Jobs given up since the start, because their client went away or their time ran
    /// out: dropped from the queue, or stopped while decoding.
    public var abandoned: Int {
        condition.lock(); defer { condition.unlock() }
        return abandonedJobs
    }

    /// Runs `body` on a worker and returns its result. Throws `Refusal.queueFull` at
    /// once when the queue is full, `Refusal.timedOut` after `timeout` seconds, and
    /// `CancellationError` when the calling task is cancelled or `abandonWhen` completes (its client went away);
    /// in each case the job leaves the queue, or stops at its next segment.
    func run<T: Sendable>(timeout: Double, abandonWhen gone: Disconnection? = nil,
                                 _ body: @escaping (Worker) throws -> T) async throws -> T {
        let box = ContinuationBox<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                box.set(continuation)
                let job = Job(run: { worker in
                    box.resume(with: Result { try body(worker) })
                }, refuse: { refusal in
                    box.resume(with: .failure(refusal))
                })
                box.job = job
                condition.lock()
                if closed {
                    condition.unlock()
                    box.resume(with: .failure(Refusal.closed))
                    return
                }
                if queue.count >= queueLimit && running + queue.count >= workerCount {
                    let estimate = Int((meanSeconds * Double(queue.count + 1) / Double(workerCount)).rounded(.up))
                    condition.unlock()
                    box.resume(with: .failure(Refusal.queueFull(retryAfter: max(1, estimate))))
                    return
                }
                queue.append(job)
                condition.signal()
                condition.unlock()
                // Weak: a finished job (and the upload it holds) must not wait for its timer.
                DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [weak self, weak job] in
                    if let job { self?.abandon(job, because: .timedOut) }
                }
                // The connection closing: the request cannot be answered any more.
                gone?.whenGone { [weak self, weak job] in
                    if let job { self?.abandon(job, because: nil) }
                }
                if Task.isCancelled { abandon(job, because: nil) }
            }
        } onCancel: {
            if let job = box.job { abandon(job, because: nil) }
        }
    }

    /// Drops `job` from the queue (answering its request now), or tells it to stop if it is running.
    private func abandon(_ job: Job, because refusal: Refusal?) {
        let reason: any Error = refusal ?? CancellationError()
        condition.lock()
        let index = queue.firstIndex { $0 === job }
        if let index { queue.remove(at: index); abandonedJobs += 1 }
        condition.unlock()
        job.abandon()
        if index != nil || refusal != nil {
            // A running job's request is answered now too; the worker's result is discarded.
            job.refuse(reason)
        }
    }

    /// Lets the queued and running jobs finish, then ends the threads.
    public func shutdown() {
        condition.lock()
        closed = true
        condition.broadcast()
        while exited < workerCount { condition.wait() }
        condition.unlock()
    }

    private func loop(_ worker: Worker) {
        while true {
            condition.lock()
            while queue.isEmpty && !closed { condition.wait() }
            if queue.isEmpty {
                exited += 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let job = queue.removeFirst()
            running += 1
            condition.unlock()

            let started = Date()
            worker.current = job
            job.run(worker)
            worker.current = nil
            let seconds = Date().timeIntervalSince(started)

            condition.lock()
            running -= 1
            if job.isAbandoned { abandonedJobs += 1 }
            meanSeconds = 0.8 * meanSeconds + 0.2 * seconds
            condition.unlock()
        }
    }
}

/// A continuation resumed exactly once, by whichever comes first: the worker's
/// result, a timeout, or the client going away.
private final class ContinuationBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, any Error>?
    private var _job: WorkerPool.Job?

    var job: WorkerPool.Job? {
        get { lock.lock(); defer { lock.unlock() }; return _job }
        set { lock.lock(); _job = newValue; lock.unlock() }
    }

    func set(_ continuation: CheckedContinuation<T, any Error>) {
        lock.lock(); self.continuation = continuation; lock.unlock()
    }

    func resume(with result: Result<T, any Error>) {
        lock.lock()
        let c = continuation
        continuation = nil
        _job = nil  // the job holds this box: break the cycle
        lock.unlock()
        c?.resume(with: result)
    }
}
