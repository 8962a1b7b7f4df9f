"""The `coalition` command line."""
