"""Serving policy with no UI in it: deployment limits and shareable setup links."""
