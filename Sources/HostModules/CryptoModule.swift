import LuaRuntime

/// `crypto`: SHA-256, HMAC-SHA256 and the encodings webhook signatures need. Digests come back
/// as lowercase hex unless the last argument asks for "base64" or "raw" (the bytes).
public enum CryptoModule {
    public static let module = LuaModule(name: "crypto", functions: [
        ("hmac_sha256", { arguments in
            guard let key = arguments.bytes(1) else { return arguments.badArgument(1, to: "crypto.hmac_sha256", expected: "key string") }
            guard let message = arguments.bytes(2) else { return arguments.badArgument(2, to: "crypto.hmac_sha256", expected: "message string") }
            return push(Signing.hmacSHA256(key: key, message: message), encoding: 3, "hmac_sha256", &arguments)
        }),
        ("sha256", { arguments in
            guard let message = arguments.bytes(1) else { return arguments.badArgument(1, to: "crypto.sha256", expected: "string") }
            return push(Signing.sha256(message), encoding: 2, "sha256", &arguments)
        }),
        ("hex_encode", { arguments in
            guard let bytes = arguments.bytes(1) else { return arguments.badArgument(1, to: "crypto.hex_encode", expected: "string") }
            arguments.push(Signing.hex(bytes))
            return .results(1)
        }),
        ("base64_encode", { arguments in
            guard let bytes = arguments.bytes(1) else { return arguments.badArgument(1, to: "crypto.base64_encode", expected: "string") }
            arguments.push(Signing.base64(bytes))
            return .results(1)
        }),
        ("base64_decode", { arguments in
            guard let text = arguments.string(1) else { return arguments.badArgument(1, to: "crypto.base64_decode", expected: "string") }
            guard let bytes = Signing.base64Decode(text) else {
                arguments.pushNil()
                arguments.push("crypto.base64_decode: not valid base64")
                return .results(2)
            }
            arguments.push(bytes: bytes)
            return .results(1)
        }),
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
