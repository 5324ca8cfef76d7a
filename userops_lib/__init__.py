"""userops_lib: the data work and statistics behind the userops notebooks and reports."""

from userops_lib.data import Dataset, load_dataset
from userops_lib.errors import DataError, Problem

__all__ = ["DataError", "Dataset", "Problem", "load_dataset"]
__version__ = "0.1.0"
