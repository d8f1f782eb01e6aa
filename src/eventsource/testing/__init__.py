"""Test support shipped with the package: backend contract suites (these need pytest)."""
