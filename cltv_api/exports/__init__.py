"""Files the service hands out: CSV that spreadsheets open safely and the business-case workbook.

* :mod:`.csv_safe`: CSV with CSV-injection ("formula injection") neutralised, numbers written as
  numbers, dates in ISO 8601 and the locale options spreadsheets need (``;`` separator, decimal
  comma, UTF-8 byte-order mark);
* :mod:`.workbook`: the XLSX of a business case whose cash flows are live formulas.
"""
