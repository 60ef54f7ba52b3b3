"""imagine-bot: turn ``/imagine`` into images from a Replicate-compatible prediction API."""

__version__ = "0.1.0"
