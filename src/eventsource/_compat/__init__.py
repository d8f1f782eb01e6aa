"""Speed shims over third-party internals: one module per dependency, each feature-detected
with a plain fallback that gives the same results (tests compare the two)."""
