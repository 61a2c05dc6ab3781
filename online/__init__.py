"""The online relevance shim: Flask app, tiered routing, teacher clients, write-back worker."""
