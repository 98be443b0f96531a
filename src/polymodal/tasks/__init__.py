"""Tasks: what a model predicts, how its labels are checked, encoded, scored and formatted.

One file per task registers it on import (``classification``, ``multilabel``, ``multioutput``, ``regression``, ``alignment``, ``generation``);
``tasks.base`` holds the ``Task`` contract and the registry, ``tasks.infer`` the schema of a
training table. A new task is one new file here and one import line below.
"""
from polymodal.tasks.base import Task, get_task, register_task, task_names, unregister_task
from polymodal.tasks.infer import check_align_columns, choose_task, infer_schema, schema_of
from polymodal.tasks import classification, multilabel, multioutput, regression, alignment, generation  # noqa: F401,I001  (register)

__all__ = ["Task", "register_task", "get_task", "task_names", "unregister_task", "infer_schema", "schema_of",
           "choose_task", "check_align_columns"]
