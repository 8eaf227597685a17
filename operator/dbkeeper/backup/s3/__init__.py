"""Backups in S3-compatible object storage: where (``location``), how to reach it
(``client``), and the catalog of one bucket prefix (``store``)."""
