"""Contact imports from CSV and XLSX: readers, column mapping, validation, the import and its jobs."""
