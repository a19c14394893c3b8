"""Model complexity for `fercli info` (filled in with the model registry)."""


def model_summary(record) -> dict:
    return {}
