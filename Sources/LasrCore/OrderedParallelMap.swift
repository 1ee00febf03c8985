import Foundation

/// Runs `work` for indices `0..<count` on `jobs` threads and hands each result to
/// `deliver` on the calling thread, in index order, as soon as it and all before it
/// are done — so a batch prints its first result before the last is computed.
///
/// `makeWorker` runs once per thread and returns that thread's `work` function, so
/// per-thread state (an FFT plan, decoder buffers) is made once and never shared.
public func orderedParallelMap<T: Sendable>(
    count: Int, jobs: Int,
    makeWorker: @escaping @Sendable () -> (Int) -> T,
    deliver: (Int, T) -> Void
) {
    guard count > 0 else { return }
    let threads = max(1, min(jobs, count))
    if threads == 1 {
        let work = makeWorker()
        for i in 0..<count { deliver(i, work(i)) }
        return
    }
    let shared = OrderedResults<T>(count: count)
    for _ in 0..<threads {
        let thread = Thread {
            let work = makeWorker()
            while let i = shared.nextIndex() { shared.store(work(i), at: i) }
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
    for i in 0..<count { deliver(i, shared.wait(for: i)) }
}

private final class OrderedResults<T: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var results: [T?]
    private var next = 0

    init(count: Int) { results = [T?](repeating: nil, count: count) }

    func nextIndex() -> Int? {
        condition.lock(); defer { condition.unlock() }
        guard next < results.count else { return nil }
        next += 1
        return next - 1
    }

    func store(_ value: T, at i: Int) {
        condition.lock()
        results[i] = value
        condition.broadcast()
        condition.unlock()
    }

    func wait(for i: Int) -> T {
        condition.lock(); defer { condition.unlock() }
        while results[i] == nil { condition.wait() }
        let value = results[i]!
        results[i] = nil
        return value
    }
}
