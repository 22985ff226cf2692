import Logging
import LuaRuntime
import MoonbaseJSON

/// A state with the sandbox and `modules` (none by default: the bare runtime), logging to
/// `logger` (nowhere by default).
public func makeState(_ limits: LuaLimits = .default, loader: LuaModuleLoader? = nil, modules: [LuaModule] = [],
                      logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })) throws -> LuaState {
    try LuaState(limits: limits, logger: logger, moduleLoader: loader, modules: modules)
}

/// Running a chunk in a test and reading its result.
extension LuaState {
    /// Loads `source` as `chunk` in a fresh sandbox, runs it, returns its first result as JSON.
    public func run(_ source: String, chunk: String = "@hooks/test.lua") -> Result<JSONValue?, LuaError> {
        let environment: LuaRef
        switch makeEnvironment(chunkName: chunk) {
        case .success(let env): environment = env
        case .failure(let error): return .failure(error)
        }
        defer { release(environment) }
        return runIn(environment, source, chunk: chunk)
    }

    public func runIn(_ environment: LuaRef, _ source: String, chunk: String = "@hooks/test.lua") -> Result<JSONValue?, LuaError> {
        let base = top
        defer { setTop(base) }
        return load(Array(source.utf8), chunkName: chunk, environment: environment).flatMap { function in
            defer { release(function) }
            return call(function).flatMap { count in
                guard count > 0 else { return .success(nil) }
                do throws(LuaConversionError) {
                    return .success(try json(at: base + 1))
                } catch {
                    return .failure(LuaError(kind: .runtime, message: error.message))
                }
            }
        }
    }

    public func value(_ source: String) throws -> JSONValue? {
        try run(source).get()
    }

    public func failure(_ source: String) -> LuaError? {
        if case .failure(let error) = run(source) { return error }
        return nil
    }
}
