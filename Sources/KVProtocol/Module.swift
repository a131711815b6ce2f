// RESP2 values and codecs: see RESPValue.swift.
