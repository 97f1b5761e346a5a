# shadow = decay * shadow + (1 - decay) * value: the shadow keeps 99% of its old value (0)
# and takes 1% of v (10). TensorFlow computes it in float32 and prints 0.099999905.
predicted_shadow = 0.99 * 0.0 + (1 - 0.99) * 10.0
