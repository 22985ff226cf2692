/// Signing headers for outgoing webhooks, per the Standard Webhooks spec (standardwebhooks.com).
public enum StandardWebhook {
    /// Why a webhook could not be signed.
    public enum SigningError: Error, Equatable {
        /// A `whsec_` secret whose remainder is not valid base64.
        case invalidSecret
    }

    /// The `webhook-id`, `webhook-timestamp` and `webhook-signature` headers for `body`.
    ///
    /// The signature is `v1,` + base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")), over the exact
    /// body bytes that will be sent. A secret starting with `whsec_` carries its key base64-encoded
    /// after the prefix; any other secret is used as its UTF-8 bytes.
    ///
    /// - Parameter timestamp: Unix time in seconds.
    /// - Throws: `SigningError.invalidSecret` for a `whsec_` secret that is not base64.
    public static func headers(id: String, timestamp: Int64, body: [UInt8], secret: String) throws(SigningError) -> [(String, String)] {
        let key: [UInt8]
        if secret.hasPrefix("whsec_") {
            guard let decoded = Signing.base64Decode(String(secret.dropFirst("whsec_".count))) else {
                throw .invalidSecret
            }
            key = decoded
        } else {
            key = Array(secret.utf8)
        }
        let signed = Array("\(id).\(timestamp).".utf8) + body
        let signature = Signing.base64(Signing.hmacSHA256(key: key, message: signed))
        return [
            ("webhook-id", id),
            ("webhook-timestamp", String(timestamp)),
            ("webhook-signature", "v1,\(signature)"),
        ]
    }
}
