print("kvd-storage-bench: being written")
