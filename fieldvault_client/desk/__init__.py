"""The advocate desk: a local web console on the advocate's own machine.

``fieldvault desk`` serves the page from this package on 127.0.0.1 with a
per-run secret, unlocks the advocate's key once and decrypts there; the
service only ever hands out ciphertext. See docs/DESK.md.
"""
