"""ltxserve: a self-hosted server for the LTX Video API."""

__version__ = "0.1.0"
