"""Ingestion of customer data uploads (CSV, XLSX, Parquet) into normalised Parquet.

Typical use::

    from cltv_api.ingest import ColumnMapping, ParseOptions, ingest_file, preview

    form = preview(upload_path)                      # columns, formats, suggested mapping
    result = ingest_file(upload_path, data_dir=data_dir,
                         mapping=ColumnMapping(customer_id="Клиент"),
                         options=ParseOptions(date_format="%d/%m/%Y"))
    result.path, result.sha256, result.report

Errors are the service's domain errors (``cltv_api.errors``): InvalidInput (with
FieldErrors naming rows), AmbiguousFormat (the user must pass ``date_format`` or
``decimal_separator``), PayloadTooLarge and StorageError.
"""

from cltv_api.ingest.mapping import ColumnMapping
from cltv_api.ingest.options import ParseOptions
from cltv_api.ingest.pipeline import IngestResult, Preview, ingest_file, preview, sniff_file
from cltv_api.ingest.sniff import DetectedFormat
from cltv_api.ingest.validate import Issue, ValidationReport

__all__ = [
    "ColumnMapping",
    "DetectedFormat",
    "IngestResult",
    "Issue",
    "ParseOptions",
    "Preview",
    "ValidationReport",
    "ingest_file",
    "preview",
    "sniff_file",
]
