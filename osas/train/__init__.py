"""Training loops: the one-shot supernet and stand-alone models."""
