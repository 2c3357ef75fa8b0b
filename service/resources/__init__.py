"""Thin Falcon resources. Each declares ``auth`` (method -> roles) and gets
its collaborators injected; domain logic lives in schemas/, keys/ and sync/."""

ALL_STAFF = ('worker', 'advocate', 'supervisor', 'admin', 'liaison')
CASE_STAFF = ('advocate', 'supervisor')
ADMIN = ('admin',)

