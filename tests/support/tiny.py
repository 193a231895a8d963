"""The tiny GeoSSM the fast tests share: geossm-nano overrides small enough for seconds-long runs."""

TINY = dict(depth=2, embed_dim=32, ground_size=(32, 128), satellite_size=(64, 64))
