# In the widget: pick 'mlp/output/kernel' in the dropdown of net/logits/kernel and
# 'mlp/output/bias' in that of net/logits/bias (or add the rule 'mlp/output/ -> net/logits/').
# The same two edits in code:
mapper.plan.assign("net/logits/kernel", "mlp/output/kernel")
mapper.plan.assign("net/logits/bias", "mlp/output/bias")
