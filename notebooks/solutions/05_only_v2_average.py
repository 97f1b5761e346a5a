# Keys: names in the checkpoint (no ":0"). Values: the graph's variables. One entry: v2's shadow.
only_v2 = {"v2/ExponentialMovingAverage": v2}
