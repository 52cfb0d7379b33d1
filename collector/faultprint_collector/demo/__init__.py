"""The demo: a simulated application calling two versions of a model."""
