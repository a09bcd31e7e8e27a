"""Code shared by test modules: import it as ``from tests.helpers.<module> import ...``."""
