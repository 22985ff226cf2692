@testable import HookHost
import Testing

/// The registration API's description for editors stays complete as the API grows.
@Suite struct HookAPITests {
    @Test(arguments: RegistrationFunction.allCases)
    func everyOptionIsDescribed(_ function: RegistrationFunction) {
        for option in function.allowedOptions {
            #expect(RegistrationFunction.optionDescriptions[option]?.hasPrefix(option + "? ") == true, "\(function.rawValue): \(option)")
        }
    }

    @Test func everyRegistrationGlobalIsDeclared() throws {
        let definitions = HookTypes.definitions(modules: [])
        for global in RegistrationFunction.allCases.map(\.rawValue) + ["route", "cron", "reject"] {
            #expect(definitions.contains("function \(global)("), "\(global)")
        }
    }
}
