"""Exact radius search over packed 256-bit codes, behind one interface, with a brute-force reference."""
