"""The staff client: it runs on people's own machines and holds their keys.

The ``fieldvault`` staff commands (``cli/``) and the advocate desk
(``desk/``) share the home folder, the API session and record opening. The
service never imports this package, and this package never imports the
service: it talks to it over HTTP.
"""
