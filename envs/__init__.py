"""Gymnasium environments built on :mod:`sim` (the driving env comes in a later issue)."""

__all__: list[str] = []
