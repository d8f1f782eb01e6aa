"""Shims into third-party internals, one module per dependency; each feature-detected, with a
plain fallback through the dependency's public API."""
