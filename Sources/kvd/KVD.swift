print("kvd: under construction")
