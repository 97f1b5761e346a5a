# 19 entries: 4 weights, 4 shadows, 8 Adam slots and 3 counters. strip() leaves out the 8 slots
# and Adam's beta1_power and beta2_power (global_step stays); promote_ema() writes each of the
# 4 shadows under its weight's key, in place of the raw weight: 4 weights + global_step.
tensors_written = 5
