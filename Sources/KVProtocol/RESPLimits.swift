/// Every limit of the RESP codecs, named, with a default. A request or reply that
/// exceeds one is a `RESPProtocolError`: the server answers `-ERR Protocol error: ...` and closes
/// the connection, as Redis does, because the rest of the stream can no longer be framed.
public struct RESPLimits: Hashable, Sendable {
    /// Longest line without its CRLF: an inline request, a `*`/`$` header, or a simple string or
    /// error in a reply. Redis's `PROTO_INLINE_MAX_SIZE` is the same 64 KiB.
    public var lineBytesMax = 64 * 1024
    /// Longest bulk string. The server limits values to 1 MiB (`KVLimits.valueBytesMax`); the
    /// slack lets a value slightly over that limit reach the command handler, which answers a
    /// clear `-ERR value too large` and keeps the connection open.
    public var bulkBytesMax = (1 << 20) + 64 * 1024
    /// Most elements in one array: arguments of one request, or elements of one reply array.
    /// Redis refuses more than 1024 * 1024 arguments too.
    public var arrayElementsMax = 1024 * 1024
    /// Most bytes of bulk payload in one request or reply, summed over all its elements, so that
    /// many maximal arguments cannot add up to an unbounded allocation.
    public var messageBytesMax = 64 << 20
    /// Deepest nesting of arrays in a reply. Requests are always flat (arrays of bulk strings).
    public var nestingDepthMax = 16

    /// The defaults above.
    public init() {}

    /// Defaults, with a different bulk string limit (e.g. the server's value limit plus slack).
    public init(bulkBytesMax: Int) {
        self.bulkBytesMax = bulkBytesMax
    }
}
