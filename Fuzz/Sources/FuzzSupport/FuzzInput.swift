#if canImport(Glibc)
import Glibc
#endif

/// A libFuzzer input split into a selector byte (the first) and the byte stream after it. The
/// selector picks how the stream is cut into chunks, so the fuzzer explores fragmentations too.
public struct FuzzInput {
    public let selector: UInt8
    public let stream: [UInt8]

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        let bytes = Array(UnsafeBufferPointer(start: data, count: data == nil ? 0 : size))
        selector = bytes.first ?? 0
        stream = Array(bytes.dropFirst())
    }

    /// The stream cut into chunks of 1 ... 2^(selector & 7) bytes, sizes drawn by a generator
    /// seeded with the selector: the same input is always cut the same way.
    public var chunks: [ArraySlice<UInt8>] {
        var state = UInt64(selector) &+ 0x9E37_79B9_7F4A_7C15
        let largest = UInt64(1) << UInt64(selector & 7)
        var result: [ArraySlice<UInt8>] = []
        var start = 0
        while start < stream.count {
            state = state &+ 0x9E37_79B9_7F4A_7C15
            var mixed = (state ^ (state >> 30)) &* 0xBF58_476D_1CE4_E5B9
            mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
            mixed ^= mixed >> 31
            let end = min(stream.count, start + 1 + Int(mixed % largest))
            result.append(stream[start..<end])
            start = end
        }
        return result
    }
}

extension FuzzInput {
    /// Decodes the stream whole and in `chunks` (`decode(pieces, compact)`, where `compact` asks
    /// the decoder to compact its buffer between chunks, as selector bit 8 says) and checks that
    /// both give the same outcome; returns the whole stream's.
    public func decodedAlike<Outcome: Equatable>(_ decode: ([ArraySlice<UInt8>], Bool) -> Outcome) -> Outcome {
        let whole = decode([stream[...]], false)
        let pieces = decode(chunks, selector & 8 != 0)
        expect(whole == pieces, "whole stream gives \(whole), chunks give \(pieces)")
        return whole
    }
}

/// Stops the fuzzer with a message when an invariant does not hold (libFuzzer records the input
/// as a crash).
public func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("fuzz invariant broken: \(message())") }
}

/// With `KVD_FUZZ_WRITE_SEEDS=DIR` in the environment, writes `seeds` (file name, bytes) into DIR
/// and exits: scripts/fuzz.sh --write-seeds regenerates Fuzz/corpus with the real encoders.
public func writeSeedsIfAsked(_ seeds: () throws -> [(name: String, bytes: [UInt8])]) {
    guard let pointer = getenv("KVD_FUZZ_WRITE_SEEDS") else { return }
    let directory = String(cString: pointer)
    do {
        for (name, bytes) in try seeds() {
            let path = "\(directory)/\(name)"
            guard let file = fopen(path, "wb") else { fatalError("cannot create \(path)") }
            if !bytes.isEmpty { _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, bytes.count, file) } }
            fclose(file)
        }
    } catch {
        fatalError("cannot make seeds: \(error)")
    }
    exit(0)
}

/// libFuzzer's driver, linked in by `-sanitize=fuzzer`: it parses libFuzzer's flags from argv and
/// runs `callback` on every input. Used instead of libFuzzer's own `main`, since SwiftPM links an
/// executable target's Swift `main`.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Runs libFuzzer with the process's arguments and `callback` as the target, then exits.
public func runFuzzer(_ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
}
