v2_value = reader.get_tensor("v2")
print(v2_value)
