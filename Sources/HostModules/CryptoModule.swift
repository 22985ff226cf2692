import LuaRuntime

/// `crypto`: SHA-256, HMAC-SHA256 and the encodings webhook signatures need. Digests come back
/// as lowercase hex unless the last argument asks for "base64" or "raw" (the bytes).
public enum CryptoModule {
    public static let module = LuaModule(name: "crypto", summary: "Digests, HMAC signatures and their encodings.", functions: [
        LuaFunction("hmac_sha256", "HMAC-SHA256 of `message` under `key`.",
                    parameters: ["key string", "message string", #"encoding? "hex"|"base64"|"raw""#], returns: ["string"]) { arguments in
            guard let key = arguments.bytes(1) else { return arguments.badArgument(1, to: "crypto.hmac_sha256", expected: "key string") }
            guard let message = arguments.bytes(2) else { return arguments.badArgument(2, to: "crypto.hmac_sha256", expected: "message string") }
            return push(Signing.hmacSHA256(key: key, message: message), encoding: 3, "hmac_sha256", &arguments)
        },
        LuaFunction("sha256", "SHA-256 digest of `message`.",
                    parameters: ["message string", #"encoding? "hex"|"base64"|"raw""#], returns: ["string"]) { arguments in
            guard let message = arguments.bytes(1) else { return arguments.badArgument(1, to: "crypto.sha256", expected: "string") }
            return push(Signing.sha256(message), encoding: 2, "sha256", &arguments)
        },
        LuaFunction("hex_encode", "Lowercase hex of any bytes.", parameters: ["bytes string"], returns: ["string"]) { arguments in
            guard let bytes = arguments.bytes(1) else { return arguments.badArgument(1, to: "crypto.hex_encode", expected: "string") }
            arguments.push(Signing.hex(bytes))
            return .results(1)
        },
        LuaFunction("base64_encode", "Standard base64 of any bytes.", parameters: ["bytes string"], returns: ["string"]) { arguments in
            guard let bytes = arguments.bytes(1) else { return arguments.badArgument(1, to: "crypto.base64_encode", expected: "string") }
            arguments.push(Signing.base64(bytes))
            return .results(1)
        },
        LuaFunction("base64_decode", "The bytes of a base64 text, or nil and a message when it is not base64.",
                    parameters: ["text string"], returns: ["string? bytes", "string? error"]) { arguments in
            guard let text = arguments.string(1) else { return arguments.badArgument(1, to: "crypto.base64_decode", expected: "string") }
            guard let bytes = Signing.base64Decode(text) else {
                arguments.pushNil()
                arguments.push("crypto.base64_decode: not valid base64")
                return .results(2)
            }
            arguments.push(bytes: bytes)
            return .results(1)
        },
    ])

    private static func push(_ digest: [UInt8], encoding index: Int32, _ function: String, _ arguments: inout LuaArguments) -> LuaHostResult {
        switch arguments.isNil(index) ? "hex" : arguments.string(index) {
        case "hex": arguments.push(Signing.hex(digest))
        case "base64": arguments.push(Signing.base64(digest))
        case "raw": arguments.push(bytes: digest)
        default: return .error("crypto.\(function): encoding must be \"hex\", \"base64\" or \"raw\"")
        }
        return .results(1)
    }
}
