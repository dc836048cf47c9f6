"""The gRPC service (package hashmatch.v1): server, client, authentication, conversions, metrics."""
