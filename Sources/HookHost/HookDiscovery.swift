import Crypto
import Foundation
import LuaRuntime

/// A hook file found in the hooks folder, with its source read once for every Lua state.
public struct HookFile: Sendable {
    /// As the listing shows it: the folder's last component and the file name (`hooks/notify.lua`).
    public var displayPath: String
    /// The file name without `.lua` (`notify`).
    public var module: String
    public var source: [UInt8]
    /// Set when the file could not be read.
    public var readError: String?

    var chunkName: String { "@" + displayPath }
}

/// Finds hook files and `_` modules (SPEC section 2).
public struct HookDirectory: Sendable {
    public var path: String

    public init(path: String) {
        self.path = path
    }

    var displayPrefix: String {
        let trimmed = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        let last = (trimmed as NSString).lastPathComponent
        return last.isEmpty || last == "." ? "" : last + "/"
    }

    /// Whether the folder exists.
    public var exists: Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// Regular `*.lua` files directly in the folder, in bytewise order of their names; names
    /// starting with `_` (shared modules) or `.` are skipped, subfolders are not scanned.
    public func discover() throws -> [HookFile] {
        guard exists else {
            throw HookDirectoryError(message: "hooks folder '\(path)' does not exist")
        }
        return try luaFileNames { !$0.hasPrefix("_") }.map(readFile)
    }

    /// Regular `*.lua` files directly in the folder whose names `include` admits (never those
    /// starting with `.`), in bytewise order.
    private func luaFileNames(_ include: (String) -> Bool) throws -> [String] {
        let manager = FileManager.default
        let names = try manager.contentsOfDirectory(atPath: path).filter { name in
            guard name.hasSuffix(".lua"), !name.hasPrefix("."), include(name) else { return false }
            let attributes = try? manager.attributesOfItem(atPath: path + "/" + name)
            return attributes?[.type] as? FileAttributeType == .typeRegular
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// A SHA-256 (64 lowercase hex digits) over what loading `files` reads: their names and
    /// contents, and those of the folder's `_` modules, which they may `require` (read now).
    /// Nodes compare it to tell whether they serve the same hooks: it changes with any byte of
    /// such a file, or one added, removed or renamed, and with nothing else (not modification
    /// times, not the folder's path or name). No folder, or an empty one, has the digest of no files.
    public func digest(of files: [HookFile]) -> String {
        var entries = files.map { (name: $0.module + ".lua", source: $0.readError == nil ? $0.source : nil) }
        let modules = (try? luaFileNames { $0.hasPrefix("_") }) ?? []
        entries += modules.map { name in (name, FileManager.default.contents(atPath: path + "/" + name).map { Array($0) }) }
        entries.sort { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
        var hash = SHA256()
        // Each part is preceded by its length, so no two different folders hash the same bytes.
        func part(_ bytes: some Collection<UInt8>) {
            withUnsafeBytes(of: UInt64(bytes.count).bigEndian) { hash.update(bufferPointer: $0) }
            hash.update(data: Array(bytes))
        }
        for entry in entries {
            part(Array(entry.name.utf8))
            // An unreadable file is not the same as an empty one.
            hash.update(data: [entry.source == nil ? 0 : 1])
            part(entry.source ?? [])
        }
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: hash.finalize().flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
    }

    /// One hook file of the folder by name, whatever its name (for `moonbase hooks test`).
    public func file(named name: String) throws -> HookFile {
        guard name.hasSuffix(".lua"), FileManager.default.fileExists(atPath: path + "/" + name) else {
            throw HookDirectoryError(message: "no hook file '\(name)' in '\(path)'")
        }
        return readFile(named: name)
    }

    func readFile(named name: String) -> HookFile {
        let module = String(name.dropLast(4))
        let display = displayPrefix + name
        guard let data = FileManager.default.contents(atPath: path + "/" + name) else {
            return HookFile(displayPath: display, module: module, source: [], readError: "\(display): cannot read the file")
        }
        return HookFile(displayPath: display, module: module, source: Array(data))
    }

    /// `require(name)` loads `_name.lua` from this folder and nothing else: no paths, no C modules.
    public var moduleLoader: LuaModuleLoader {
        let directory = self
        return { name in
            guard name.hasPrefix("_"), name.count > 1,
                  name.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) })
            else {
                return .failure(LuaConversionError("module '\(name)' not found: require only loads _-prefixed modules from the hooks folder"))
            }
            let file = directory.readFile(named: name + ".lua")
            if file.readError != nil {
                return .failure(LuaConversionError("module '\(name)' not found: no file \(file.displayPath)"))
            }
            return .success((file.source, file.chunkName))
        }
    }
}

public struct HookDirectoryError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
