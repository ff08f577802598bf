"""Blob storage behind one interface (local directory now; S3-compatible later).

StorageError
+-- BlobNotFound
"""
