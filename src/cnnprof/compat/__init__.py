"""Compatibility with the tools cnnprof replaces: torchstat's table (``compat.torchstat``) and
the peer runners behind ``cnnprof crosscheck`` (``compat.peers``)."""
