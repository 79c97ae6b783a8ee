"""Interop with the original releases: magenta's TensorFlow variables and magenta-js models (read and written)."""

from .magenta_js import (
    ModelFileError,
    load_gen_json,
    load_magenta_js,
    load_vae_json,
    read_gen_json,
    read_vae_json,
    write_gen_json,
    write_vae_json,
)
from .magenta_tf import from_tf_variables, to_tf_variables, variable_map
from .export import ExportError, export  # after the writers: export dispatches to them

__all__ = ["ExportError", "ModelFileError", "export", "from_tf_variables", "load_gen_json", "load_magenta_js",
           "load_vae_json", "read_gen_json", "read_vae_json", "to_tf_variables", "variable_map", "write_gen_json", "write_vae_json"]
