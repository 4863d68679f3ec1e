"""Pydantic (v2) models of the HTTP API: request bodies and responses, with examples."""
