# In the widget: choose "(none)" in the dropdowns of head/kernel and head/bias, and leave
# "initialise them" ticked. The same from code:
finetune_mapper.plan.unassign("head/kernel")
finetune_mapper.plan.unassign("head/bias")
finetune_mapper.model.initialize_unmapped = True
print(finetune_mapper.model.warning)
