import Crypto
import Foundation
import HostModules
import Testing

@Suite struct SigningTests {
    @Test func sha256AndHex() {
        #expect(Signing.hex(Signing.sha256(Array("abc".utf8)))
            == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Signing.hex([0x00, 0x0F, 0xA0, 0xFF]) == "000fa0ff")
    }

    // RFC 4231, test case 2.
    @Test func hmacSHA256() {
        let mac = Signing.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(Signing.hex(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func base64RoundTrip() {
        let bytes: [UInt8] = [0, 1, 2, 0xFB, 0xFF]
        #expect(Signing.base64(bytes) == "AAEC+/8=")
        #expect(Signing.base64Decode("AAEC+/8=") == bytes)
        #expect(Signing.base64Decode("") == [])
        #expect(Signing.base64Decode("not base64!") == nil)
    }
}

@Suite struct StandardWebhookTests {
    // The example from the Standard Webhooks reference libraries' tests.
    @Test func knownVector() throws {
        let headers = try StandardWebhook.headers(
            id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
            body: Array(#"{"test": 2432232314}"#.utf8), secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        )
        #expect(headers.map(\.0) == ["webhook-id", "webhook-timestamp", "webhook-signature"])
        #expect(headers.map(\.1) == [
            "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ])
    }

    @Test func plainSecretSignsExactBytes() throws {
        let body: [UInt8] = Array("{\"é\":1}\n".utf8) + [0xFF]
        let headers = try StandardWebhook.headers(id: "evt_1", timestamp: 1_700_000_000, body: body, secret: "s3cret")
        let expected = HMAC<SHA256>.authenticationCode(
            for: Array("evt_1.1700000000.".utf8) + body, using: SymmetricKey(data: Array("s3cret".utf8))
        )
        #expect(headers.last?.1 == "v1," + Data(expected).base64EncodedString())
    }

    @Test func malformedWhsecSecretThrows() {
        #expect(throws: StandardWebhook.SigningError.invalidSecret) {
            try StandardWebhook.headers(id: "m", timestamp: 0, body: [], secret: "whsec_%%%")
        }
    }
}
