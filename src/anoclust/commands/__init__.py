"""Sub-commands of the `anoclust` CLI, one module each."""
