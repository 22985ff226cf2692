#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// A TCP relay on a loopback port to another port, that a test stops and starts again: what a
/// client of the relay sees as its server going away (connections reset, connects refused) and
/// coming back. Plain sockets and a thread per direction: a test tool, not a server.
public final class TCPRelay: Sendable {
    /// The port clients connect to.
    public let port: Int
    private let target: Int
    private let state = Mutex<(listener: Int32, sockets: [Int32])>((-1, []))

    /// A relay to `target` on 127.0.0.1, listening on a port the kernel chooses.
    public init(to target: Int) throws {
        self.target = target
        let listener = try Self.listening(on: 0)
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        relay(from: listener)
    }

    /// Stops relaying: the listener and every connection are shut down (clients see resets, then
    /// refusals). Each descriptor is closed by the thread that uses it, once it has let go, so a
    /// number the kernel hands out again is never touched here.
    public func stop() {
        state.withLock { state in
            for socket in state.sockets + [state.listener] where socket >= 0 { shutdown(socket, Int32(SHUT_RDWR)) }
            state = (-1, [])
        }
    }

    /// Relays again, on the same port.
    public func start() throws {
        relay(from: try Self.listening(on: port))
    }

    deinit { stop() }

    private func relay(from listener: Int32) {
        state.withLock { $0.listener = listener }
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { break } // shut down by stop()
                guard let server = try? Self.connected(to: target) else { close(client); continue }
                let kept = state.withLock { state -> Bool in
                    guard state.listener == listener else { return false }
                    state.sockets += [client, server]
                    return true
                }
                guard kept else { close(client); close(server); break }
                let pair = SocketPair(client, server, relay: self)
                Self.pump(from: client, to: server, pair)
                Self.pump(from: server, to: client, pair)
            }
            close(listener)
        }
    }

    /// Forgets and closes a connection's two descriptors, under the lock `stop` shuts them down with.
    fileprivate func release(_ sockets: (Int32, Int32)) {
        state.withLock { state in
            state.sockets.removeAll { $0 == sockets.0 || $0 == sockets.1 }
            close(sockets.0)
            close(sockets.1)
        }
    }

    private static func pump(from source: Int32, to destination: Int32, _ pair: SocketPair) {
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            pumping: while true {
                let count = read(source, &buffer, buffer.count)
                guard count > 0 else { break }
                var sent = 0
                while sent < count {
                    let written = buffer[sent..<count].withUnsafeBytes { send(destination, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    guard written > 0 else { break pumping }
                    sent += written
                }
            }
            // Both descriptors stay open until both directions have stopped.
            shutdown(source, Int32(SHUT_RDWR))
            shutdown(destination, Int32(SHUT_RDWR))
            pair.finished()
        }
    }

    private static func address(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return address
    }

    private static func listening(on port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = address(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw RelayError(reason: "cannot listen on port \(port): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    private static func connected(to port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = address(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw RelayError(reason: "cannot reach port \(port)") }
        return fd
    }
}

/// A relayed connection's descriptors, closed once both of its directions have stopped.
private final class SocketPair: Sendable {
    private let sockets: (Int32, Int32)
    private let running = Mutex(2)
    private let relay: TCPRelay

    init(_ first: Int32, _ second: Int32, relay: TCPRelay) {
        sockets = (first, second)
        self.relay = relay
    }

    func finished() {
        let last = running.withLock { running -> Bool in
            running -= 1
            return running == 0
        }
        if last { relay.release(sockets) }
    }
}

struct RelayError: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
