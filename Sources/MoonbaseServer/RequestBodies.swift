import Hummingbird
import MoonbaseJSON

/// Reading request bodies so that an early answer never leaves a client stuck.
///
/// When a request says `Connection: close`, the server stops reading once it has answered and
/// waits for the client to close; a client that writes its whole body before reading (Python's
/// urllib does) then blocks on a full socket buffer forever. So whatever answers before the body
/// is read (a 413, a 401) first reads the rest of the body and throws it away, up to
/// `drainLimit`; a keep-alive connection is drained that way by the server anyway.
enum RequestBodies {
    /// How much of an unwanted body is read and dropped at most before answering.
    static let drainLimit = 64 << 20

    /// The body, at most `limit` bytes; past it, the rest is drained and the request refused with 413.
    static func collect(_ request: Request, upTo limit: Int) async throws -> ByteBuffer {
        var collected: ByteBuffer? // a body in one chunk (the usual case) is returned as it came, not copied
        var seen = 0
        for try await chunk in request.body {
            seen += chunk.readableBytes
            if seen > limit {
                if seen > drainLimit { break }
                continue
            }
            if collected == nil {
                collected = chunk
            } else {
                collected!.writeImmutableBuffer(chunk)
            }
        }
        guard seen <= limit else { throw APIError(.contentTooLarge, "request body is too large") }
        return collected ?? ByteBuffer()
    }

    /// The body parsed as JSON, with the REST API's parser; 400 "malformed JSON: …" if it is not.
    static func json(_ body: ByteBuffer) throws -> JSONValue {
        do {
            return try body.withUnsafeReadableBytes { bytes throws(JSONParseError) in try JSONValue.parse(bytes) }
        } catch {
            throw APIError(.badRequest, "malformed JSON: \(error)")
        }
    }

    /// Reads and drops the body (up to `drainLimit`), before answering without it.
    static func drain(_ request: Request) async {
        var seen = 0
        do {
            for try await chunk in request.body {
                seen += chunk.readableBytes
                if seen > drainLimit { return }
            }
        } catch {
            return // the client went away: nothing left to answer
        }
    }
}
