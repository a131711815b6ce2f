/// A user name and password a client authenticates with (docs/SECURITY.md). The description
/// never shows the password.
public struct ClientCredentials: Hashable, Sendable, CustomStringConvertible {
    /// Redis's name for the user of a single `requirepass` password.
    public static let defaultUser = "default"

    public var user: String
    public var password: String

    public init(user: String = defaultUser, password: String) {
        self.user = user
        self.password = password
    }

    /// `AUTH user password`.
    public var authRequest: [[UInt8]] { [Array("AUTH".utf8), Array(user.utf8), Array(password.utf8)] }

    public var description: String { "ClientCredentials(user: \(user), password: <hidden>)" }
}
