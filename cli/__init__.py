"""The `hashmatch` command: parses arguments and wires the layers together. Nothing imports it."""
