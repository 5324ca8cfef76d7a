"""Funnel: where users drop between entering and the last step, and how long each step takes."""
