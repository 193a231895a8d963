"""cvgl-edge: cross-view geo-localisation from training to the edge."""

__version__ = "0.1.0"
