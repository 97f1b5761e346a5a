# In the widget: choose (none) in the dropdowns of cnn/logits/kernel and cnn/logits/bias, then
# click Restore. The same in code:
student_mapper.model.choose("cnn/logits/kernel", None)
student_mapper.model.choose("cnn/logits/bias", None)
student_mapper.restore()
