"""GPS traces as road evidence: readers, density rasters, per-suggestion support, discovery.

Imagery cannot see roads under trees or tell a road from a dirt field; vehicles driving a line
can. Traces stay in flat numpy arrays (``GpsTraces``) from reader to raster, so millions of
points cost tens of megabytes, never one Python object each.
"""
