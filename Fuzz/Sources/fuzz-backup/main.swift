#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport

writeSeedsIfAsked(seeds)
// The file each input is written to; a crash leaves it behind for a look.
atexit { unlink(path) }
runFuzzer(fuzzOne)
