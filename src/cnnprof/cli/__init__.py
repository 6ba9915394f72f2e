"""The command line: thin commands over the library; exit codes decided in app.main."""
