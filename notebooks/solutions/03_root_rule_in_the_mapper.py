# In the widget: type "/ -> net/" in the rules box (then click outside it, or press Tab).
# The same from code:
net_mapper.model.rules_text = "/ -> net/"
print(net_mapper.model.counts_text())
