"""Hypothesis profiles: ``ci`` (set by .ci/run) derandomizes, so a landing run replays the same
examples every time; locally every run explores new ones."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
