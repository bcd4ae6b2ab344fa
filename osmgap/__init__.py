"""osmgap: find roads that are missing from OpenStreetMap."""

__version__ = "0.1.0"
