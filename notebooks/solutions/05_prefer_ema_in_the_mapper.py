# In the widget: press "prefer EMA ★" (the key column turns to the shadows), then Restore.
# The same from code:
ema_mapper.model.prefer_ema = True
ema_mapper.restore()
print(ema_mapper.model.counts_text())
