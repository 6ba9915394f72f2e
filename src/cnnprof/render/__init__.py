"""Renderers: the only place numbers are formatted. They read finished reports."""
