# In the widget: move the decay slider to 0.95 (or type 0.95 in the box beside it and press
# Enter); the summary then says "90% of the way to 10 at step 45". 0.955 is just too slow:
# 0.955 ** 50 is 0.10004, a hair above 0.1. The same from code, as typing in the box:
reach_explorer.decay_box.value = "0.95"
print(reach_explorer.model.summary())
