"""Exporters of stored runs to experiment trackers: TensorBoard and MLflow (optional extras).

Importing this package needs neither tracker; each export function raises SplinescopeError
with the install hint when its tracker is missing.
"""

from splinescope.export.to_mlflow import MlflowExport, export_mlflow
from splinescope.export.to_tensorboard import TensorBoardExport, export_tensorboard

__all__ = ["MlflowExport", "TensorBoardExport", "export_mlflow", "export_tensorboard"]
