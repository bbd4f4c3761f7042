"""memsession's benchmark harness, run from a checkout (not installed with the package)."""
