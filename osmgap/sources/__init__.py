"""Readers for the things osmgap compares: OSM roads and overhead imagery."""
