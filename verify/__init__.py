"""Checks of the theory against Monte-Carlo sampling; each check can fail and says why."""
