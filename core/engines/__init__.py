"""Support code for model runtimes (imported only by plugins that use them)."""
