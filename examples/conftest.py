"""Makes this folder the import root of its tests (pytest puts a rootdir conftest's folder on sys.path)."""
