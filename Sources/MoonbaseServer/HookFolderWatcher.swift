import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Reports changes to the `*.lua` files of a folder, through inotify: a write closed (an in-place
/// save), a file moved in or out (a save by rename), created or deleted. Dot-files (`.a.lua.swp`),
/// `*~`, `*.swp` and every other name that does not end in `.lua` (`4913`, vim's probe) are ignored.
/// A thread of its own reads the events; `stop` ends it.
final class HookFolderWatcher: Sendable {
    private let descriptor: Int32
    private let stopped = Atomic<Bool>(false)

    /// Starts watching `folder`; `changed` is called (on the watcher's thread) for each batch of
    /// events that touches a `*.lua` file.
    init(folder: String, changed: @escaping @Sendable () -> Void) throws {
        let descriptor = inotify_init1(Int32(IN_CLOEXEC))
        guard descriptor >= 0 else { throw WatchError(message: "inotify_init1: " + String(cString: strerror(errno))) }
        let events = UInt32(IN_CLOSE_WRITE) | UInt32(IN_MOVED_TO) | UInt32(IN_MOVED_FROM) | UInt32(IN_CREATE) | UInt32(IN_DELETE)
        guard inotify_add_watch(descriptor, folder, events) >= 0 else {
            let message = String(cString: strerror(errno))
            close(descriptor)
            throw WatchError(message: "\(folder): \(message)")
        }
        self.descriptor = descriptor
        let thread = Thread { [self] in readEvents(changed) }
        thread.name = "moonbase-hooks-watch"
        thread.start()
    }

    /// Stops watching (within a tenth of a second).
    func stop() {
        stopped.store(true, ordering: .relaxed)
    }

    /// Whether a change to a file named `name` is one to reload for.
    static func isHookSource(_ name: String) -> Bool {
        name.hasSuffix(".lua") && !name.hasPrefix(".")
    }

    private func readEvents(_ changed: @Sendable () -> Void) {
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let header = MemoryLayout<inotify_event>.size
        while !stopped.load(ordering: .relaxed) {
            var waiting = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&waiting, 1, 100) > 0 else { continue } // wakes to see `stopped`
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { continue }
            var offset = 0
            var relevant = false
            while offset + header <= count {
                let length = buffer.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)) }
                let name = buffer[(offset + header)..<min(offset + header + length, count)].prefix { $0 != 0 }
                if Self.isHookSource(String(decoding: name, as: UTF8.self)) { relevant = true }
                offset += header + length
            }
            if relevant { changed() }
        }
    }
}

/// The hooks folder cannot be watched.
struct WatchError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
