# In the widget: type kind:variable in the filter box, keep the sort "most changed first",
# and click the magnifier button of the first row. The same from code:
early_diff.model.filter_text = "kind:variable"
early_diff.model.sort = "change"
early_diff.model.selected = early_diff.model.rows[0].key
print(early_diff.model.details[0])
