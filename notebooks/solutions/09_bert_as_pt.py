# The same preset plan as for the safetensors file; the output's suffix '.pt' picks torch.save's format.
bert_plan = apply_preset(ckptwidgets.plan_write(bert_prefix), "bert")
bert_pt = bert_plan.write(WORKDIR / "bert" / "model.pt", overwrite=True).prefix
# Or from the shell: shell("export", "bert/bert_model.ckpt", "bert/model.pt", "--preset", "bert", "--overwrite")
