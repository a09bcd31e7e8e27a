"""Galleries of embedded faces: ``find``'s incremental folder index and its SQLite store.

Stands on the pipeline layer (it embeds photos with a :class:`facepipe.Pipeline`); the apps
layer (CLI, REST, stream, deepface facade) stands on it.
"""
