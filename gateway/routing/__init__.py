"""Choosing the starting tier: the learned router, its features, training and evaluation."""
