"""A module that ends the process that imports it (for the harness's error tests)."""

raise SystemExit(5)
