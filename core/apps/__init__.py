"""What people run: the CLI, the REST service, video streams, calibration and the deepface facade.

The top layer: it may import every other layer of ``facepipe``; nothing imports it except the
lazy names of ``facepipe`` itself and the ``facepipe`` console script.
"""
