"""Evaluation metrics: toy-distribution distances, classifier-based digit metrics, Inception FID/KID."""
