"""Builders of the benchmark tables (av-digits, emoji) and their downloads; no fit or predict uses them."""
