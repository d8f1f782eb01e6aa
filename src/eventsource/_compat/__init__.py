"""Speed shims that rely on third-party internals: one module per dependency, each
feature-detected, with a plain fallback through the public API that gives the same result."""
