"""LORE: e-commerce search relevance judged by a generative model, served by query frequency."""

__version__ = "0.1.0"
