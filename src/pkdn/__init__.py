"""pkdn: Prior Knowledge Distillation Network for x8 face super-resolution."""

import os

# onnxruntime >= 1.2x on Linux starts Microsoft's 1DS telemetry on import (a $TMPDIR/.ses file and an events
# endpoint). pkdn runs offline and sends nothing, so it is switched off here, before any pkdn module (the face
# detector, ONNX export, the web app) can import onnxruntime, whether from the CLI or from Python.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.3.0"
