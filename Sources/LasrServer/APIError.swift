import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An error as the OpenAI API reports it: an HTTP status and
/// `{"error": {"message", "type", "param", "code"}}`, the message saying what to fix.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    /// OpenAI's error type: `invalid_request_error`, `authentication_error`, `server_error`, …
    public var type: String
    /// The form field or query parameter at fault, if one is.
    public var param: String?
    /// A stable machine-readable code (`model_not_found`, `file_too_large`, …).
    public var code: String?
    /// Seconds after which a retry may succeed (503).
    public var retryAfter: Int?

    public init(_ status: HTTPResponse.Status, _ message: String, type: String = "invalid_request_error",
                param: String? = nil, code: String? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status.code) \(message)" }

    /// A bad or missing form field.
    public static func badField(_ param: String, _ message: String) -> APIError {
        APIError(.badRequest, message, param: param, code: "invalid_value")
    }

    private struct Body: Encodable {
        struct Inner: Encodable {
            let message: String
            let type: String
            let param: String?
            let code: String?
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(message, forKey: .message)
                try c.encode(type, forKey: .type)
                // OpenAI writes null rather than leaving the keys out.
                try c.encode(param, forKey: .param)
                try c.encode(code, forKey: .code)
            }
            enum CodingKeys: String, CodingKey { case message, type, param, code }
        }
        let error: Inner
    }

    /// The JSON body of the error.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(Body(error: .init(message: message, type: type, param: param, code: code)))) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// The HTTP response carrying the error.
    public var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: json + "\n")))
    }
}

/// Turns every error a route throws into an OpenAI-style JSON error, so that no
/// client ever sees an empty or HTML error body.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as HTTPError {
            let status = error.status
            let message: String = switch status {
            case .notFound: "no route \(request.method.rawValue) \(request.uri.path)"
            case .methodNotAllowed: "\(request.method.rawValue) is not allowed on \(request.uri.path)"
            case .contentTooLarge: "the request body is larger than the server accepts"
            default: error.body ?? status.reasonPhrase
            }
            let type = status.code >= 500 ? "server_error" : "invalid_request_error"
            return APIError(status, message, type: type, code: status == .notFound ? "not_found" : nil).response
        } catch is CancellationError {
            // The client went away; nobody reads this.
            return APIError(.init(code: 499, reasonPhrase: "Client Closed Request"), "request cancelled").response
        } catch {
            context.logger.error("internal error: \(error)")
            return APIError(.internalServerError, "internal error: \(error)", type: "server_error").response
        }
    }
}
