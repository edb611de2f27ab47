"""Jinja2 templates of the generated modules, installed as the package ``neurogen.templates``."""
