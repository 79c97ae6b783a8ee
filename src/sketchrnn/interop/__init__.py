"""Interop with the original releases: magenta's TensorFlow variables and magenta-js models."""

from .magenta_js import ModelFileError, load_gen_json, read_gen_json
from .magenta_tf import from_tf_variables, to_tf_variables, variable_map

__all__ = ["ModelFileError", "from_tf_variables", "load_gen_json", "read_gen_json", "to_tf_variables", "variable_map"]
