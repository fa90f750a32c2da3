"""The complexity router: request signals (rules kind) and the learned model (learned kind)."""
