"""Search: score candidates with shared weights, choose which to retrain."""
