# In the widget: "show: problems", choose (none) in both rows' dropdowns, press Restore. In code:
for var in head.weights:  # finetune/predictions/kernel and finetune/predictions/bias
    ft_mapper.plan.unassign(var.path)
ft_report = ft_mapper.restore()
print(ft_mapper.model.message)
