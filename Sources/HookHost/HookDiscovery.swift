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
        let manager = FileManager.default
        guard exists else {
            throw HookDirectoryError(message: "hooks folder '\(path)' does not exist")
        }
        let names = try manager.contentsOfDirectory(atPath: path).filter { name in
            guard name.hasSuffix(".lua"), !name.hasPrefix("_"), !name.hasPrefix(".") else { return false }
            let attributes = try? manager.attributesOfItem(atPath: path + "/" + name)
            return attributes?[.type] as? FileAttributeType == .typeRegular
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.map(readFile)
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
