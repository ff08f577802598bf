"""Blob storage behind one interface: a local directory (the embedded default) or an
S3-compatible bucket (``s3.py``; not yet selectable from the settings, see
docs/architecture.md).

    StorageError          any store failure (translated from OSError / botocore)
    +-- BlobNotFound      no such key, or a key that could escape the store
"""
