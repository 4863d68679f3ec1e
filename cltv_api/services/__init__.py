"""Business logic of the service. Raises :mod:`cltv_api.errors` errors, never HTTP exceptions."""
