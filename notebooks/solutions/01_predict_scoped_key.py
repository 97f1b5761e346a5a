# The scopes, then the name given to get_variable, joined by "/"; no ":0".
predicted_key = "model/dense/kernel"
