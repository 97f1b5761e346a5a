# Keys: names in the checkpoint. Values: the graph's variables. Their names play no part.
swapped = {"v1": a2, "v2": a1}
