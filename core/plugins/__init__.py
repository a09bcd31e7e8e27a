"""Namespace of the built-in plugins (each sub-package lives in plugins/ at the repository root)."""
