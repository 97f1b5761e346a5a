# A shadow's key is its variable's key plus "/ExponentialMovingAverage" (an entry of kind ema).
# In the browser: type it in the go-to box and press Enter. In code:
browser.model.selected = "teacher/predictions/kernel/ExponentialMovingAverage"
