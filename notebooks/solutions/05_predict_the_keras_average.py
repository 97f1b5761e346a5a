# Step 1: the average starts at the weight, 10.0. Then average = 0.75 * average + 0.25 * weight:
# step 2: 0.75 * 10 + 0.25 * 20 = 12.5; step 3: 0.75 * 12.5 + 0.25 * 30 = 16.875.
keras_average = 16.875
