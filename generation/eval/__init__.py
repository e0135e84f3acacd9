"""Evaluation of generated clips: does a clip show what its prompt asked for (`adherence`)."""
