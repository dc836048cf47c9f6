"""Array backends and hand-written compute kernels.

The bottom layer of hashmatch: it knows arrays, not images, hashes or lists. Every fast kernel here has a
plain NumPy twin that defines its exact semantics, and the tests compare the two.
"""
