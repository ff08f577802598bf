"""The wire contract: what a request may say (validation) and which models exist (catalog).

Pure functions over JSON-shaped data; nothing here touches the database or a file.
"""
