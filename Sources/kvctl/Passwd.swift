import ArgumentParser
import KVAuth

#if canImport(Glibc)
import Glibc
#endif

/// `kvctl passwd`: reads a password and prints its salted hash, for `requirepass` or a users
/// file (docs/SECURITY.md). On a terminal it asks twice without echoing; otherwise it reads the
/// first line of standard input. The password is never printed or sent anywhere.
struct Passwd: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read a password (no echo) and print its hash for requirepass or a users file.",
        discussion: """
            Example: kvctl passwd   or   printf '%s\\n' "$PASSWORD" | kvctl passwd
            """)

    @Option(help: "PBKDF2 rounds (\(PasswordHash.roundsMin) to \(PasswordHash.roundsMax)).")
    var rounds = PasswordHash.roundsMin

    func validate() throws {
        guard (PasswordHash.roundsMin...PasswordHash.roundsMax).contains(rounds) else {
            throw ValidationError("--rounds must be \(PasswordHash.roundsMin) to \(PasswordHash.roundsMax)")
        }
    }

    func run() throws {
        let password: [UInt8]
        if isatty(STDIN_FILENO) == 1 {
            let first = try Self.readHidden(prompt: "Password: ")
            let again = try Self.readHidden(prompt: "Again: ")
            guard constantTimeEqual(first, again) else { throw CLIError("the two passwords differ") }
            password = first
        } else {
            password = Self.readLine()
        }
        guard !password.isEmpty else { throw CLIError("empty password") }
        do {
            Output.line(try PasswordHash.make(password: password, rounds: rounds).description)
        } catch {
            throw CLIError("\(error)")
        }
    }

    /// One line of standard input, without its line ending.
    static func readLine() -> [UInt8] {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while read(STDIN_FILENO, &byte, 1) == 1, byte != UInt8(ascii: "\n") {
            line.append(byte)
            if line.count > PasswordHash.passwordBytesMax { break }
        }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        return line
    }

    /// A line read from the terminal with echo off (restored afterwards, also on error).
    static func readHidden(prompt: String) throws -> [UInt8] {
        var saved = termios()
        guard tcgetattr(STDIN_FILENO, &saved) == 0 else { throw CLIError("cannot read the terminal's settings") }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        Output.prompt(prompt)
        guard tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0 else { throw CLIError("cannot turn off echo") }
        defer {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            Output.error("")
        }
        return readLine()
    }
}
