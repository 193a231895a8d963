"""On-drone localisation: satellite tile index, frame sources, search, temporal filter, sinks."""
