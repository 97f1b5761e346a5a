# Result axis i is Keras kernel axis axes[i]: torch wants [out, in, height, width], and the
# Keras kernel is [height, width, in, out], so out is axis 3, in axis 2, height 0, width 1.
axes = (3, 2, 0, 1)
