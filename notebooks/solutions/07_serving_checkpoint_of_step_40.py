step_40 = checkpoints[-2]  # the training checkpoint of step 40
# One plan: leave out the optimizer state, put each shadow in its weight's place, rename the scope.
exercise_plan = ckptwidgets.plan_write(step_40).strip().promote_ema().rename({"model/": "serving/"})
print(exercise_plan)  # the dry run
exercise_prefix = exercise_plan.write(WORKDIR / "serving-40" / "model.ckpt", overwrite=True).prefix
