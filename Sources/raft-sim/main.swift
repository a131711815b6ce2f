print("raft-sim: being written")
