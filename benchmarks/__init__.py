"""Benchmarks that print tables (`make bench`); targets are read off the tables, never asserted."""
