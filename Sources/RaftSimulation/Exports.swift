public import RaftCore
