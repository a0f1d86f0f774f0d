"""The --device option of the examples: numpy (the default), reference or cupy."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHOICES = ["numpy", "reference", "cupy"]
HELP = "numpy, the twelve-primitive reference device, or cupy (an NVIDIA GPU)"


def use_device(name):
    """Make `name` simplegrad's default device, or exit with the reason it cannot be."""
    from simplegrad import CupyDevice, NumpyDevice, Tensor
    if name == "numpy":
        Tensor.device = NumpyDevice()
    elif name == "reference":  # devices/reference.py, from a checkout of the repository
        if not os.path.exists(os.path.join(ROOT, "devices", "reference.py")):
            sys.exit("--device reference needs the repository's devices/ folder next to "
                     "examples/")
        sys.path.insert(0, ROOT)
        from devices.reference import ReferenceDevice
        Tensor.device = ReferenceDevice()
    elif name == "cupy":
        try:
            Tensor.device = CupyDevice()
        except Exception as e:  # no CuPy, or no usable GPU
            sys.exit(f"--device cupy: {e}")
    else:
        sys.exit(f"--device: {name!r} is not one of {', '.join(CHOICES)}")
