"""Signal types: one module per hash type owns its parsing, serialisation, comparison, default threshold and
index; `engine.signals` is the registry the rest of the engine works through."""
