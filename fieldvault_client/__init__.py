"""The staff client that runs on people's own machines (the advocate desk)."""
