"""faultprint collector: OTLP in, failure fingerprints and consistency analytics out."""

__version__ = "0.1.0"
