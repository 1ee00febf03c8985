import Foundation
import Hummingbird
import NIOCore

/// Fires once when a client closes its connection before its answer is ready.
final class Disconnection: @unchecked Sendable {
    private let lock = NSLock()
    private var fired = false
    private var handlers: [() -> Void] = []

    /// Runs `handler` when the client goes away (at once if it has).
    func whenGone(_ handler: @escaping () -> Void) {
        lock.lock()
        if fired { lock.unlock(); handler(); return }
        handlers.append(handler)
        lock.unlock()
    }

    func fire() {
        lock.lock()
        fired = true
        let run = handlers
        handlers = []
        lock.unlock()
        run.forEach { $0() }
    }
}

/// One client connection, as the requests on it see it: whether its client has gone.
///
/// Connections are kept alive between uploads (a client sends its next request on
/// the same socket), so a request cannot watch the inbound stream for its end: the
/// next request's head arrives there too. Instead `ConnectionWatcher`, a handler in
/// the connection's pipeline, tells this object when the client's side closes, and
/// each request in flight on it hears of it through its own `Disconnection`.
final class ConnectionWatch: @unchecked Sendable {
    private let lock = NSLock()
    private var closed = false
    private var requests: [ObjectIdentifier: Disconnection] = [:]

    /// Fires `request` when the client goes away (at once if it has), until `forget`.
    func watch(_ request: Disconnection) {
        lock.lock()
        if closed { lock.unlock(); request.fire(); return }
        requests[ObjectIdentifier(request)] = request
        lock.unlock()
    }

    /// The request is answered: its Disconnection no longer matters.
    func forget(_ request: Disconnection) {
        lock.lock()
        requests[ObjectIdentifier(request)] = nil
        lock.unlock()
    }

    /// The client closed its side, or the connection ended.
    func close() {
        lock.lock()
        closed = true
        let waiting = requests.values
        requests = [:]
        lock.unlock()
        waiting.forEach { $0.fire() }
    }

    /// The watch of each open connection, by channel: how a request, which knows only its channel, finds its connection's.
    private static let lock = NSLock()
    nonisolated(unsafe) private static var open: [ObjectIdentifier: ConnectionWatch] = [:]

    static func of(_ channel: any Channel) -> ConnectionWatch? {
        lock.lock(); defer { lock.unlock() }
        return open[ObjectIdentifier(channel)]
    }

    fileprivate static func register(_ watch: ConnectionWatch, for channel: any Channel) {
        lock.lock(); open[ObjectIdentifier(channel)] = watch; lock.unlock()
    }

    fileprivate static func unregister(_ channel: any Channel) {
        lock.lock(); open[ObjectIdentifier(channel)] = nil; lock.unlock()
    }
}

/// Sits in each HTTP connection's pipeline after the HTTP decoder and passes
/// everything on untouched; it only notices the client's side closing. Hummingbird
/// allows half-closed connections, so a client that closes its socket shows up as
/// `inputClosed` rather than as the channel going inactive; either one counts.
final class ConnectionWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let watch = ConnectionWatch()

    func handlerAdded(context: ChannelHandlerContext) {
        ConnectionWatch.register(watch, for: context.channel)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ConnectionWatch.unregister(context.channel)
        watch.close()
    }

    func channelInactive(context: ChannelHandlerContext) {
        watch.close()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { watch.close() }
        context.fireUserInboundEventTriggered(event)
    }
}

/// The context of lasr's HTTP routes: Hummingbird's basic one, plus the watch of the
/// connection the request came on (nil where there is no watched connection, as in
/// Hummingbird's in-process test client).
struct ServerRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let connection: ConnectionWatch?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        connection = ConnectionWatch.of(source.channel)
    }
}
