"""Hash lists and their provenance, import formats, the store, the index and the matcher."""
