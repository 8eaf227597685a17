"""Local processes for the demo and the tests: a PostgreSQL cluster and a PgBouncer.

In a cluster these run as pods; here they run as child processes of the same
binaries, configured by the same code.
"""
