"""A hub-models plugin: one model (spiral-gan), its weights and its recipe, shipped as package data."""
