"""A real S3 server on loopback for the object-storage tests, and ways to hurt it."""
