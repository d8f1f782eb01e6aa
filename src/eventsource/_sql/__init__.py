"""Per-dialect SQL helpers: connecting, the DDL the stores run, and driver-error mapping."""
