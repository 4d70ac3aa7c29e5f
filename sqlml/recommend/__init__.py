"""Recommenders: fitting factor models from (user, item, rating) rows, the stored model,
its evaluation and its training call."""
