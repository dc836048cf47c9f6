"""Batch scans for investigators (`hashmatch scan`): collections and archives walked, hashed on every core,
matched, journalled for resume, and reported."""
