"""Escalation gates: judge a cheaper tier's answer; a failed gate re-asks the next tier."""
