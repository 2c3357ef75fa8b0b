"""The staff commands of the ``fieldvault`` CLI."""
