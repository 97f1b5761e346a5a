# The first Dense layer of the model is layers/dense; a Dense saves its kernel (0), then its bias (1).
bias_key = "layers/dense/vars/1"
