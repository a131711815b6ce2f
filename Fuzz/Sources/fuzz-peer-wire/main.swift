import FuzzSupport

writeSeedsIfAsked(seeds)
runFuzzer(fuzzOne)
