# The same error class as in the v1-only case; it now names the variable nothing loads.
error_class = "FailedPreconditionError"
uninitialised = "v1"
