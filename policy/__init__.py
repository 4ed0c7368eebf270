"""The end-to-end policy and its training (comes in a later issue)."""

__all__: list[str] = []
