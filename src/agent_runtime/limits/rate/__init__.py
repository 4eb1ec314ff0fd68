"""GCRA rate limiting with memory and Redis backends."""
