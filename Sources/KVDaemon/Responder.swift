/// Delivers the one reply to one client command. The driver calls `send` exactly once per
/// command (it removes the request from its tables first), from inside the Raft loop.
public struct Responder: Sendable {
    let deliver: (@Sendable (Reply) -> Void)?

    public init(_ deliver: @escaping @Sendable (Reply) -> Void) { self.deliver = deliver }
    private init() { deliver = nil }

    /// For commands the node proposes itself, which nobody waits for.
    public static let none = Responder()

    public func send(_ reply: Reply) { deliver?(reply) }
}
