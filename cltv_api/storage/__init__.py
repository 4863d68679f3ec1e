"""Metadata storage: engine and sessions, ORM tables, repositories, migrations runner."""
