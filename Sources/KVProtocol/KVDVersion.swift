/// The version of kvd and kvctl (`--version`, `INFO`'s `kvd_version`). The minor number counts
/// the capabilities released so far; the protocol and file formats it writes are documented in
/// docs/PROTOCOL.md and docs/CONFIGURATION.md.
public enum KVDVersion {
    public static let current = "0.10.0"
}
