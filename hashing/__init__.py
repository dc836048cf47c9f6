"""Media -> hashes: decoding with limits, PDQ (CPU and GPU share one array-level definition), exact digests.

Knows nothing of lists, indexes or servers.
"""
