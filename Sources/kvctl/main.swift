print("kvctl: under construction")
