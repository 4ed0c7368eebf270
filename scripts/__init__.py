"""Thin entry points behind the one `loopdrive` command."""
