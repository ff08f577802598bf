"""The HTTP layer: the documented LTX API on FastAPI, plus ltxserve's additive routes."""
