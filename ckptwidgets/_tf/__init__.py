"""TensorFlow and Keras, reached in one place each.

- :mod:`.quiet`: TensorFlow imported on demand, its C++ start-up log silenced.
- :mod:`.private`: every access to TensorFlow's or Keras' private attributes, each with a
  public fallback.
"""
