// The kvd daemon library: see RaftLoop.swift.
