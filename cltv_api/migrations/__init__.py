"""Alembic migrations of the metadata database (run by :mod:`cltv_api.storage.migrate`)."""
